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

/// <summary>One answer. For usage: cost, payer, balance after; for accounts: balance and whether it was created.</summary>
public sealed record Outcome(OutcomeKind Kind, int Status = 0, string? Detail = null, decimal? Cost = null, string? PaidBy = null,
    decimal? BalanceAfter = null, Guid? BillingErrorId = null, bool? Created = null)
{
    public bool Definite => Kind != OutcomeKind.Unknown;

    public static Outcome Unknown(string detail, int status = 0) => new(OutcomeKind.Unknown, status, detail);

    public override string ToString() => $"{Kind}({Status}) cost={Cost} paidBy={PaidBy} after={BalanceAfter} err={BillingErrorId} {Detail}";
}

public interface ITransport : IAsyncDisposable
{
    string Name { get; }

    Task<Outcome> InitUser(Guid user, CancellationToken ct);

    Task<Outcome> InitProject(Guid project, Guid creator, CancellationToken ct);

    Task<Outcome> Usage(Guid usageId, Guid project, Guid user, Guid model, long input, long output, CancellationToken ct);

    Task<Outcome> PersonalUsage(Guid usageId, Guid user, Guid model, long input, long output, CancellationToken ct);

    Task<Outcome> TopUp(AccountKind kind, Guid account, decimal amount, Guid creditId, CancellationToken ct);

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

    private async Task<Outcome> Send(HttpMethod method, string path, object? body, string token, CancellationToken ct)
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
