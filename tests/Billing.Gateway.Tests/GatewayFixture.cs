using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Billing.Client;
using Billing.Client.Hosting;
using Billing.Hosting;
using Billing.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace Billing.Gateway.Tests;

[CollectionDefinition(Name)]
public sealed class GatewayCollection : ICollectionFixture<GatewayFixture>
{
    public const string Name = "gateway";
}

/// <summary>
/// Real parts only: a throwaway PostgreSQL with the schema, one Orleans silo hosting the billing grains with
/// ADO.NET clustering on it, and the gateway itself on Kestrel on a free loopback port, reached over real HTTP.
/// </summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    public const string SigningKey = "gateway-tests-signing-key-0123456789-abcdefghijklmnop";

    private IHost? silo;
    private WebApplication? gateway;

    public string ConnectionString { get; private set; } = "";

    public string ClusterId { get; } = $"gw-{Guid.NewGuid():N}"[..16];

    public Uri BaseAddress { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public static AuthOptions Auth => new() { SigningKey = SigningKey };

    public async Task InitializeAsync()
    {
        ConnectionString = await PostgresServer.Instance.CreateDatabaseAsync("gateway");
        silo = await StartSiloAsync(ConnectionString, ClusterId);
        var port = PostgresServer.FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{port}");
        (gateway, Http) = await BillingStack.StartGatewayAsync(BaseAddress, GatewayArgs(port, ConnectionString, ClusterId));
    }

    public Task DisposeAsync() => BillingStack.StopAsync(gateway, Http, silo);

    /// <summary>The gateway's configuration, as command-line arguments, signed with this fixture's key unless told otherwise.</summary>
    public static string[] GatewayArgs(int port, string connectionString, string clusterId, string? signingKey = SigningKey, string environment = "Testing") =>
        BillingStack.GatewayArgs(port, connectionString, clusterId, signingKey, environment);

    /// <summary>A silo with the billing grains; membership in PostgreSQL (ADO.NET clustering).</summary>
    public static Task<IHost> StartSiloAsync(string connectionString, string clusterId, Action<ISiloBuilder>? configure = null) =>
        BillingStack.StartSiloAsync(connectionString, clusterId, configure);
}

/// <summary>Tokens for the tests, signed like the gateway expects (or deliberately not).</summary>
public static class Tokens
{
    public static string Admin(Guid? sub = null) => Mint("admin", sub ?? Guid.NewGuid());

    public static string Service(Guid? sub = null) => Mint("service", sub ?? Guid.NewGuid());

    public static string User(Guid sub) => Mint(null, sub);

    public static string Mint(string? role, Guid sub, TimeSpan? lifetime = null, AuthOptions? auth = null, DateTime? now = null) =>
        TokenCommand.Mint(auth ?? GatewayFixture.Auth, sub, role, lifetime ?? TimeSpan.FromMinutes(10), now);

    /// <summary>An unsigned token (<c>alg: none</c>) with otherwise valid claims.</summary>
    public static string AlgNone(string role, Guid sub)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = Base64Url("{\"alg\":\"none\",\"typ\":\"JWT\"}");
        var payload = Base64Url(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["sub"] = sub.ToString(), ["role"] = role, ["iss"] = "billing", ["aud"] = "billing-api",
            ["iat"] = now, ["nbf"] = now, ["exp"] = now + 600,
        }));
        return $"{header}.{payload}.";
    }

    private static string Base64Url(string text) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(text)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>One HTTP exchange: status, raw body text (for exact-decimal checks) and parsed JSON.</summary>
public sealed record ApiResponse(HttpStatusCode Status, string Body, string? ContentType, HttpResponseMessage Message)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement;

    public int Code => (int)Status;

    public override string ToString() => $"{Code} {Body}";
}

public static class Api
{
    public static async Task<ApiResponse> SendAsync(this HttpClient http, HttpMethod method, string path, string? token, string? json = null,
        IDictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        foreach (var (name, value) in headers ?? new Dictionary<string, string>()) request.Headers.TryAddWithoutValidation(name, value);
        var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        return new ApiResponse(response.StatusCode, body, response.Content.Headers.ContentType?.MediaType, response);
    }

    public static Task<ApiResponse> GetAsync(this HttpClient http, string path, string? token) => http.SendAsync(HttpMethod.Get, path, token);

    public static Task<ApiResponse> PostAsync(this HttpClient http, string path, string? token, string? json = null, IDictionary<string, string>? headers = null) =>
        http.SendAsync(HttpMethod.Post, path, token, json, headers);

    public static Task<ApiResponse> PutAsync(this HttpClient http, string path, string? token, string? json) => http.SendAsync(HttpMethod.Put, path, token, json);

    /// <summary>The raw JSON text of a top-level member, e.g. <c>0.012207</c>: proves the number was written exactly.</summary>
    public static string RawMember(this ApiResponse response, string name) => response.Json.GetProperty(name).GetRawText();

    public static void ShouldBe(this ApiResponse response, HttpStatusCode expected)
    {
        Assert.True(response.Status == expected, $"expected {(int)expected} but got {response}");
        if (response.Code >= 400)
        {
            Assert.Equal("application/problem+json", response.ContentType);
            foreach (var member in new[] { "type", "title", "status" })
                Assert.True(response.Json.TryGetProperty(member, out var value) && value.ValueKind != JsonValueKind.Null, $"problem without {member}: {response}");
            Assert.Equal(response.Code, response.Json.GetProperty("status").GetInt32());
            Assert.DoesNotContain("   at ", response.Body);
        }
    }
}
