using System.Net;
using Billing.Client;
using Billing.Client.Hosting;
using Billing.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Billing.Gateway.Tests;

[Collection(GatewayCollection.Name)]
public sealed class HostingTests(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    [Fact]
    public async Task Health_endpoints_need_no_token()
    {
        var live = await http.GetAsync("/health/live", null);
        live.ShouldBe(HttpStatusCode.OK);
        var ready = await http.GetAsync("/health/ready", null);
        ready.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("ready", ready.Json.GetProperty("status").GetString());
    }

    [Fact]
    public async Task OpenApi_document_lists_every_route_with_its_types()
    {
        var doc = await http.GetAsync("/openapi/v1.json", null);
        doc.ShouldBe(HttpStatusCode.OK);
        var paths = doc.Json.GetProperty("paths");
        var expected = new (string Path, string Method)[]
        {
            ("/v1/users/{userId}/billing", "post"), ("/v1/users/{userId}/billing", "get"),
            ("/v1/projects/{projectId}/billing", "post"), ("/v1/projects/{projectId}/billing", "get"),
            ("/v1/usage", "post"), ("/v1/users/{userId}/usage", "post"), ("/v1/balance-checks", "post"),
            ("/v1/users/{userId}/history", "get"), ("/v1/projects/{projectId}/history", "get"),
            ("/v1/billing-errors", "get"), ("/v1/billing-errors/{id}/resolve", "post"),
            ("/v1/models/{modelId}/pricing", "put"), ("/v1/models/{modelId}/pricing", "get"),
            ("/v1/users/{userId}/credits", "post"), ("/v1/projects/{projectId}/credits", "post"),
            ("/v1/users/{userId}/plan", "put"), ("/v1/projects/{projectId}/plan", "put"),
            ("/health/live", "get"), ("/health/ready", "get"),
        };
        foreach (var (path, method) in expected)
        {
            Assert.True(paths.TryGetProperty(path, out var item), $"{path} missing from the OpenAPI document");
            Assert.True(item.TryGetProperty(method, out var operation), $"{method} {path} missing from the OpenAPI document");
            Assert.True(operation.GetProperty("responses").EnumerateObject().Any(r => r.Name.StartsWith('2')), $"{method} {path} has no success response");
        }

        var schemas = doc.Json.GetProperty("components").GetProperty("schemas");
        foreach (var schema in new[] { "AccountResponse", "UsageResponse", "AiUsageRequest", "BalanceCheckResponse", "HistoryPageResponse", "ModelPriceRequest", "BillingErrorPageResponse" })
            Assert.True(schemas.TryGetProperty(schema, out _), $"schema {schema} missing");
    }

    [Fact]
    public async Task Token_verb_prints_a_token_signed_with_the_configured_key()
    {
        var sub = Guid.NewGuid();
        var output = new StringWriter();
        var error = new StringWriter();
        var code = TokenCommand.Run(["token", "--role", "admin", "--sub", sub.ToString(), "--minutes", "5", $"--Auth:SigningKey={GatewayFixture.SigningKey}"], output, error);
        Assert.Equal(0, code);
        var token = output.ToString().Trim();
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = "billing",
            ValidAudience = "billing-api",
            IssuerSigningKey = GatewayFixture.Auth.CreateSecurityKey(),
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        Assert.Equal(sub.ToString(), result.Claims["sub"]);
        Assert.Equal("admin", result.Claims["role"]);
        Assert.InRange(((JsonWebToken)result.SecurityToken).ValidTo, DateTime.UtcNow.AddMinutes(4), DateTime.UtcNow.AddMinutes(6));

        Assert.Equal(2, TokenCommand.Run(["token", "--role", "root", "--sub", sub.ToString()], output, error));
        Assert.Equal(2, TokenCommand.Run(["token", "--role", "admin", "--sub", "me"], output, error));
        Assert.Equal(1, TokenCommand.Run(["token", "--role", "admin", "--sub", sub.ToString(), "--environment=Production", "--Auth:SigningKey=short"], output, error));
    }

    [Fact]
    public async Task Outside_development_a_missing_signing_key_fails_start_up_clearly()
    {
        await using var app = Program.BuildGateway(GatewayFixture.GatewayArgs(PostgresServer.FreePort(), fixture.ConnectionString, "no-such-cluster", signingKey: null, environment: "Production"));
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => app.StartAsync());
        Assert.Contains("Auth:SigningKey", failure.Message);
    }

    [Fact]
    public async Task A_short_signing_key_fails_start_up()
    {
        await using var app = Program.BuildGateway(GatewayFixture.GatewayArgs(PostgresServer.FreePort(), fixture.ConnectionString, "no-such-cluster", signingKey: "too-short"));
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => app.StartAsync());
        Assert.Contains("32 bytes", failure.Message);
    }

    [Fact]
    public async Task A_gateway_without_a_cluster_is_live_but_not_ready_and_answers_503()
    {
        var port = PostgresServer.FreePort();
        await using var app = Program.BuildGateway(GatewayFixture.GatewayArgs(port, fixture.ConnectionString, $"absent-{Guid.NewGuid():N}"));
        using var stop = new CancellationTokenSource();
        var starting = app.StartAsync(stop.Token); // keeps retrying to connect; Kestrel answers meanwhile
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            ApiResponse? live = null;
            for (var i = 0; i < 100 && live?.Status != HttpStatusCode.OK; i++)
            {
                try
                {
                    live = await client.GetAsync("/health/live", null);
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(100);
                }
            }

            Assert.Equal(HttpStatusCode.OK, live?.Status);
            (await client.GetAsync("/health/ready", null)).ShouldBe(HttpStatusCode.ServiceUnavailable);
            var call = await client.GetAsync($"/v1/users/{Guid.NewGuid()}/billing", Tokens.Service());
            call.ShouldBe(HttpStatusCode.ServiceUnavailable);
            Assert.DoesNotContain("   at ", call.Body);
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await starting.WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (OperationCanceledException)
            {
            }

            await app.StopAsync(CancellationToken.None);
        }
    }
}
