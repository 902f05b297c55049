using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Billing.Client.Endpoints;

/// <summary>The outbox, oldest first, for consumers that poll or reconcile.</summary>
public static class EventsApi
{
    public static IEndpointRouteBuilder MapEventsApi(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/v1/events").WithTags("Events").MapGet("", List).RequireAuthorization(BillingClaims.ServicePolicy)
            .WithName("ListEvents").WithSummary("Billing events after a cursor, oldest first (?after=&type=&scope=&scopeId=&limit=1..500).")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        return app;
    }

    private static async Task<Results<Ok<EventPageResponse>, ProblemHttpResult>> List(
        string? after, string[]? type, string? scope, string? scopeId, string? limit, IClusterClient cluster)
    {
        var size = 100;
        if (!string.IsNullOrEmpty(limit)
            && !(int.TryParse(limit, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out size) && size is >= 1 and <= 500))
            return ApiProblems.BadRequest("limit must be a whole number from 1 to 500.");
        if (scope is not (null or BillingScopes.Project or BillingScopes.User)) return ApiProblems.BadRequest("scope must be 'project' or 'user'.");
        Guid? id = null;
        if (scopeId is not null)
        {
            if (!RequestInput.TryParseId(scopeId, "scopeId", out var parsed, out var invalid)) return invalid;
            id = parsed;
        }

        // ?type=a,b and ?type=a&type=b both name several types.
        var types = type?.SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Distinct().ToArray();
        var result = await cluster.GetGrain<IBillingEventsGrain>(0).List(new BillingEventQuery(after, types is { Length: > 0 } ? types : null, scope, id, size));
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(EventPageResponse.From(result.Value!));
    }
}
