using System.Globalization;
using System.Security.Claims;
using System.Text.Json.Serialization;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Billing.Client.Endpoints;

/// <summary>The usage summary: what one account spent per UTC hour or day (and model), read from its usage history rows.</summary>
public static partial class UsageSummaryApi
{
    /// <summary>The default range when neither from nor to is given (API.md: the last 30 days); hourly summaries default to 48 hours.</summary>
    private static readonly TimeSpan DefaultDays = TimeSpan.FromDays(30);

    public static IEndpointRouteBuilder MapUsageSummaryApi(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/v1/usage").WithTags("Usage").MapGet("/summary", GetSummary)
            .WithName("GetUsageSummary")
            .WithSummary("An account's spend per UTC hour or day (?scope=project|user&scopeId=…&from=…&to=…&bucket=hour|day&groupBy=model).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<Results<Ok<UsageSummaryResponse>, ProblemHttpResult>> GetSummary(
        string? scope, string? scopeId, string? from, string? to, string? bucket, string? groupBy,
        ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (scope is not (BillingScopes.Project or BillingScopes.User)) return ApiProblems.BadRequest("scope must be 'project' or 'user'.");
        if (!RequestInput.TryParseId(scopeId, "scopeId", out var id, out var invalid)) return invalid;
        bucket = string.IsNullOrEmpty(bucket) ? UsageBuckets.Day : bucket;
        if (bucket is not (UsageBuckets.Hour or UsageBuckets.Day)) return ApiProblems.BadRequest("bucket must be 'hour' or 'day'.");
        if (!string.IsNullOrEmpty(groupBy) && groupBy != "model") return ApiProblems.BadRequest("groupBy must be 'model' (or absent).");
        if (!TryParseInstant(from, "from", out var fromAt, out invalid)) return invalid;
        if (!TryParseInstant(to, "to", out var toAt, out invalid)) return invalid;

        // Defaults: up to the end of the current bucket (so the newest, partial hour or day is whole), or from + the span.
        var size = UsageBuckets.Size(bucket);
        var span = bucket == UsageBuckets.Hour ? UsageBuckets.MaxRange(bucket) : DefaultDays;
        var end = toAt ?? (fromAt is { } f ? f + span : NextBoundary(DateTimeOffset.UtcNow, size));
        var start = fromAt ?? end - span;
        if (end <= start) return ApiProblems.BadRequest("to must be after from.");
        if (end - start > UsageBuckets.MaxRange(bucket))
            return ApiProblems.BadRequest(bucket == UsageBuckets.Hour
                ? "An hourly summary covers at most 48 hours: narrow from/to or use bucket=day."
                : "A daily summary covers at most 31 days: narrow from/to.");

        if (!caller.IsService())
        {
            if (scope == BillingScopes.User && !Access.MayReadUser(caller, id)) return ApiProblems.Forbidden(Access.NotYours);
            if (scope == BillingScopes.Project && !await Access.MayReadProjectAsync(caller, cluster.GetGrain<IProjectGrain>(id))) return ApiProblems.Forbidden(Access.NotYours);
        }

        var result = await cluster.GetGrain<IUsageSummaryGrain>(0).Summarize(new UsageSummaryQuery(scope, id, start, end, bucket, groupBy == "model"));
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(UsageSummaryResponse.Of(result.Value!));
    }

    /// <summary>An ISO 8601 instant; without an offset it is taken as UTC.</summary>
    private static bool TryParseInstant(string? raw, string name, out DateTimeOffset? value, out ProblemHttpResult problem)
    {
        problem = null!;
        value = null;
        if (string.IsNullOrEmpty(raw)) return true;
        // The shape first: DateTimeOffset.TryParse alone also takes "11/01/2026" or "Nov 1" and reads them its own way.
        if (IsoInstant().IsMatch(raw)
            && DateTimeOffset.TryParse(raw, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed)
            && parsed.Year is > 1 and < 9999)
        {
            value = parsed.ToUniversalTime();
            return true;
        }

        problem = ApiProblems.BadRequest($"{name} must be an ISO 8601 timestamp, e.g. 2026-11-01T00:00:00Z.");
        return false;
    }

    private static DateTimeOffset NextBoundary(DateTimeOffset now, TimeSpan size)
    {
        var ticks = now.UtcTicks - now.UtcTicks % size.Ticks;
        return new DateTimeOffset(ticks, TimeSpan.Zero) + size;
    }

    /// <summary>A date, or a date and time (seconds and fraction optional), with Z or an offset or neither (UTC).</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})?)?$")]
    private static partial System.Text.RegularExpressions.Regex IsoInstant();
}

public sealed record UsageBucketResponse(
    DateTime Start,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Guid? ModelId,
    long Requests,
    long InputTokens,
    long OutputTokens,
    decimal Cost,
    string Currency)
{
    public static UsageBucketResponse From(UsageBucket b) =>
        new(b.Start.UtcDateTime, b.ModelId, b.Requests, b.InputTokens, b.OutputTokens, b.Cost, b.Currency);
}

public sealed record UsageTotalResponse(long Requests, long InputTokens, long OutputTokens, decimal Cost, string Currency);

/// <summary>The non-empty buckets, oldest first; <c>from</c>/<c>to</c>/<c>bucket</c> echo the range actually summed.</summary>
public sealed record UsageSummaryResponse(DateTime From, DateTime To, string Bucket, IReadOnlyList<UsageBucketResponse> Buckets, UsageTotalResponse Total)
{
    public static UsageSummaryResponse Of(UsageSummary s) => new(
        s.From.UtcDateTime, s.To.UtcDateTime, s.Bucket,
        s.Buckets.Select(UsageBucketResponse.From).ToArray(),
        new UsageTotalResponse(s.Total.Requests, s.Total.InputTokens, s.Total.OutputTokens, s.Total.Cost, s.Total.Currency));
}
