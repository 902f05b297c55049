using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Billing.Bank;

public enum OutcomeKind
{
    Ok,
    Refused,      // 402: insufficient balance, a billing error stored
    NotFound,     // 404: account never initialised
    Conflict,     // 409
    Invalid,      // 400 / 422: a definite refusal that the workload should never provoke
    Unknown,      // timeout, dropped connection, 5xx: the outcome is not known
}

/// <summary>
/// One answer. For usage: cost, payer, balance after; for accounts: balance and whether it was created; for a hold
/// placed or voided: <see cref="Hold"/>; for a capture: <see cref="Capture"/>; for a grant: <see cref="Grant"/>.
/// </summary>
public sealed record Outcome(OutcomeKind Kind, int Status = 0, string? Detail = null, decimal? Cost = null, string? PaidBy = null,
    decimal? BalanceAfter = null, Guid? BillingErrorId = null, bool? Created = null)
{
    public HoldAnswer? Hold { get; init; }

    public CaptureAnswer? Capture { get; init; }

    public GrantAnswer? Grant { get; init; }

    public bool Definite => Kind != OutcomeKind.Unknown;

    public static Outcome Unknown(string detail, int status = 0) => new(OutcomeKind.Unknown, status, detail);

    public override string ToString() => $"{Kind}({Status}) cost={Cost} paidBy={PaidBy} after={BalanceAfter} err={BillingErrorId}{(Hold is null ? "" : " " + Hold)}{(Capture is null ? "" : " " + Capture)}{(Grant is null ? "" : " " + Grant)} {Detail}";
}

/// <summary>A hold as answered (placement, void): <see cref="Status"/> active, captured, voided or expired; <see cref="Payer"/> project or user.</summary>
public sealed record HoldAnswer(Guid HoldId, string Status, string Payer, Guid AccountId, decimal Amount, DateTimeOffset ExpiresAt);

/// <summary>A capture's receipt as answered.</summary>
public sealed record CaptureAnswer(Guid UsageId, Guid HoldId, decimal Cost, string DeductedFrom, Guid AccountId, decimal BalanceAfter, decimal QuotaUsed,
    decimal Held, decimal Charged, decimal Released, decimal Shortfall, bool Late, Guid? ShortfallErrorId);

/// <summary>A grant as answered.</summary>
public sealed record GrantAnswer(Guid GrantId, decimal Amount, string Status, DateTimeOffset? ExpiresAt);

public interface ITransport : IAsyncDisposable
{
    string Name { get; }

    Task<Outcome> InitUser(Guid user, CancellationToken ct);

    Task<Outcome> InitProject(Guid project, Guid creator, CancellationToken ct);

    Task<Outcome> Usage(Guid usageId, Guid project, Guid user, Guid model, long input, long output, CancellationToken ct);

    Task<Outcome> PersonalUsage(Guid usageId, Guid user, Guid model, long input, long output, CancellationToken ct);

    Task<Outcome> TopUp(AccountKind kind, Guid account, decimal amount, Guid creditId, CancellationToken ct);

    /// <summary>Places a hold (a personal one when <paramref name="project"/> is null).</summary>
    Task<Outcome> PlaceHold(Guid holdId, Guid? project, Guid user, Guid model, long input, long maxOutput, int ttlSeconds, CancellationToken ct);

    /// <summary>Captures a hold; <paramref name="usageId"/> null: the hold id is the usage id.</summary>
    Task<Outcome> CaptureHold(Guid holdId, long input, long output, Guid? usageId, CancellationToken ct);

    Task<Outcome> VoidHold(Guid holdId, CancellationToken ct);

    /// <summary>Gives an account a grant (idempotent by <paramref name="grantId"/>).</summary>
    Task<Outcome> Grant(AccountKind kind, Guid account, Guid grantId, decimal amount, GrantCategory category, int priority,
        DateTimeOffset effectiveAt, DateTimeOffset? expiresAt, CancellationToken ct);

    /// <summary>Drops every open connection (the next calls open new ones).</summary>
    void DropConnections();
}

/// <summary>HS256 tokens as the gateway expects them (issuer billing, audience billing-api).</summary>
public static class Jwt
{
    public static string Mint(string key, string role, Guid sub, TimeSpan lifetime)
    {
        static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = B64(JsonSerializer.SerializeToUtf8Bytes(new { alg = "HS256", typ = "JWT" }));
        var payload = B64(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["sub"] = sub.ToString(), ["role"] = role, ["iss"] = "billing", ["aud"] = "billing-api",
            ["iat"] = now, ["nbf"] = now - 5, ["exp"] = now + (long)lifetime.TotalSeconds,
        }));
        var signature = B64(HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), Encoding.ASCII.GetBytes($"{header}.{payload}")));
        return $"{header}.{payload}.{signature}";
    }
}

/// <summary>The gateway's HTTP API (API.md).</summary>
public sealed class HttpTransport(Uri baseAddress, string serviceToken, string adminToken) : ITransport
{
    private HttpClient client = NewClient(baseAddress);

    public string Name => "gateway HTTP " + baseAddress;

    private static HttpClient NewClient(Uri baseAddress) => new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(1) })
    {
        BaseAddress = baseAddress,
        Timeout = Timeout.InfiniteTimeSpan, // each call has its own cancellation
    };

    public void DropConnections()
    {
        var old = Interlocked.Exchange(ref client, NewClient(baseAddress));
        old.Dispose(); // in-flight requests on it fail: their outcome is unknown and they are retried
    }

    public Task<Outcome> InitUser(Guid user, CancellationToken ct) => Send(HttpMethod.Post, $"/v1/users/{user}/billing", null, serviceToken, ct);

    public Task<Outcome> InitProject(Guid project, Guid creator, CancellationToken ct) =>
        Send(HttpMethod.Post, $"/v1/projects/{project}/billing", new { creatorId = creator }, serviceToken, ct);

    public Task<Outcome> Usage(Guid usageId, Guid project, Guid user, Guid model, long input, long output, CancellationToken ct) =>
        Send(HttpMethod.Post, "/v1/usage", new { projectId = project, userId = user, modelId = model, inputTokens = input, outputTokens = output, usageId }, serviceToken, ct);

    public Task<Outcome> PersonalUsage(Guid usageId, Guid user, Guid model, long input, long output, CancellationToken ct) =>
        Send(HttpMethod.Post, $"/v1/users/{user}/usage", new { modelId = model, inputTokens = input, outputTokens = output, usageId }, serviceToken, ct);

    public Task<Outcome> TopUp(AccountKind kind, Guid account, decimal amount, Guid creditId, CancellationToken ct) =>
        Send(HttpMethod.Post, $"/v1/{(kind == AccountKind.User ? "users" : "projects")}/{account}/credits",
            new { amount, reason = "top_up", creditId }, adminToken, ct);

    public Task<Outcome> PlaceHold(Guid holdId, Guid? project, Guid user, Guid model, long input, long maxOutput, int ttlSeconds, CancellationToken ct) =>
        Send(HttpMethod.Post, "/v1/holds", new { holdId, projectId = project, userId = user, modelId = model, inputTokens = input, maxOutputTokens = maxOutput, ttlSeconds },
            serviceToken, ct, HoldOf);

    public Task<Outcome> CaptureHold(Guid holdId, long input, long output, Guid? usageId, CancellationToken ct) =>
        Send(HttpMethod.Post, $"/v1/holds/{holdId}/capture", new { inputTokens = input, outputTokens = output, usageId }, serviceToken, ct, (status, json) =>
            new Outcome(OutcomeKind.Ok, status, Cost: Dec(json, "cost"), PaidBy: Str(json, "deductedFrom"), BalanceAfter: Dec(json, "balanceAfter"))
            {
                Capture = new CaptureAnswer(Id(json, "usageId") ?? Guid.Empty, Id(json, "holdId") ?? Guid.Empty, Dec(json, "cost") ?? -1, Str(json, "deductedFrom") ?? "?",
                    Id(json, "accountId") ?? Guid.Empty, Dec(json, "balanceAfter") ?? -1, Dec(json, "quotaUsed") ?? -1, Dec(json, "held") ?? -1, Dec(json, "charged") ?? -1,
                    Dec(json, "released") ?? -1, Dec(json, "shortfall") ?? -1, json.TryGetProperty("late", out var late) && late.ValueKind == JsonValueKind.True,
                    Id(json, "shortfallBillingErrorId")),
            });

    public Task<Outcome> VoidHold(Guid holdId, CancellationToken ct) => Send(HttpMethod.Post, $"/v1/holds/{holdId}/void", null, serviceToken, ct, HoldOf);

    public Task<Outcome> Grant(AccountKind kind, Guid account, Guid grantId, decimal amount, GrantCategory category, int priority,
        DateTimeOffset effectiveAt, DateTimeOffset? expiresAt, CancellationToken ct) =>
        Send(HttpMethod.Post, $"/v1/{(kind == AccountKind.User ? "users" : "projects")}/{account}/grants",
            new { grantId, amount, category = category == GrantCategory.Paid ? "paid" : "promotional", priority, effectiveAt, expiresAt, description = "bank" },
            adminToken, ct, (status, json) => new Outcome(OutcomeKind.Ok, status, Created: status == 201)
            {
                Grant = new GrantAnswer(Id(json, "grantId") ?? Guid.Empty, Dec(json, "amount") ?? -1, Str(json, "status") ?? "?", Time(json, "expiresAt")),
            });

    private static Outcome HoldOf(int status, JsonElement json) => new(OutcomeKind.Ok, status, Created: status == 201)
    {
        Hold = new HoldAnswer(Id(json, "holdId") ?? Guid.Empty, Str(json, "status") ?? "?", Str(json, "payer") ?? "?", Id(json, "accountId") ?? Guid.Empty,
            Dec(json, "amount") ?? -1, Time(json, "expiresAt") ?? default),
    };

    private static decimal? Dec(JsonElement json, string name) =>
        json.ValueKind == JsonValueKind.Object && json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDecimal() : null;

    private static string? Str(JsonElement json, string name) =>
        json.ValueKind == JsonValueKind.Object && json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static Guid? Id(JsonElement json, string name) => Guid.TryParse(Str(json, name), out var id) ? id : null;

    private static DateTimeOffset? Time(JsonElement json, string name) =>
        json.ValueKind == JsonValueKind.Object && json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.TryGetDateTimeOffset(out var t) ? t : null;

    private async Task<Outcome> Send(HttpMethod method, string path, object? body, string token, CancellationToken ct, Func<int, JsonElement, Outcome>? ok = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null) request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, ct);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            return Outcome.Unknown(e.GetType().Name);
        }

        using (response)
        {
            string text;
            try
            {
                text = await response.Content.ReadAsStringAsync(ct);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or ObjectDisposedException or IOException)
            {
                return Outcome.Unknown("body " + e.GetType().Name, (int)response.StatusCode);
            }

            var status = (int)response.StatusCode;
            JsonElement json = default;
            try
            {
                if (text.Length > 0) json = JsonDocument.Parse(text).RootElement;
            }
            catch (JsonException)
            {
            }

            decimal? Dec(string name) => json.ValueKind == JsonValueKind.Object && json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDecimal() : null;
            string? Str(string name) => json.ValueKind == JsonValueKind.Object && json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            var detail = Str("detail") ?? Str("title");
            return response.StatusCode switch
            {
                HttpStatusCode.OK or HttpStatusCode.Created when ok is not null && json.ValueKind == JsonValueKind.Object => ok(status, json),
                HttpStatusCode.OK or HttpStatusCode.Created when ok is not null => Outcome.Unknown("2xx without a JSON body: " + text[..Math.Min(200, text.Length)], status),
                HttpStatusCode.OK or HttpStatusCode.Created when path.EndsWith("/billing", StringComparison.Ordinal) =>
                    new Outcome(OutcomeKind.Ok, status, Created: response.StatusCode == HttpStatusCode.Created, BalanceAfter: Dec("balance")),
                HttpStatusCode.OK when path.EndsWith("/credits", StringComparison.Ordinal) => new Outcome(OutcomeKind.Ok, status, BalanceAfter: Dec("balance")),
                HttpStatusCode.OK => new Outcome(OutcomeKind.Ok, status, Cost: Dec("cost"), PaidBy: Str("deductedFrom"), BalanceAfter: Dec("balanceAfter")),
                HttpStatusCode.PaymentRequired => new Outcome(OutcomeKind.Refused, status, detail,
                    BillingErrorId: Guid.TryParse(Str("billingErrorId"), out var id) ? id : null),
                HttpStatusCode.NotFound => new Outcome(OutcomeKind.NotFound, status, detail),
                HttpStatusCode.Conflict => new Outcome(OutcomeKind.Conflict, status, detail),
                HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden =>
                    new Outcome(OutcomeKind.Invalid, status, detail),
                _ => Outcome.Unknown(detail ?? text[..Math.Min(200, text.Length)], status),
            };
        }
    }

    public ValueTask DisposeAsync()
    {
        client.Dispose();
        return ValueTask.CompletedTask;
    }
}
