using System.Net;
using Billing.Client;
using Billing.Testing;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

/// <summary>
/// The gateway remembers the bearer tokens it validated (CachingJsonWebTokenHandler) and answers a remembered token
/// without validating it again (CachedJwtBearerHandler). Most tests mint a token per request; these send the same token
/// again, so the second answer comes from the remembered token, and must be the first one's.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class TokenCacheTests(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    [Fact]
    public async Task A_remembered_token_gets_the_answers_of_a_validated_one_for_every_role()
    {
        var (project, creator) = await NewProjectAsync(http);
        var model = await NewModelAsync(http);

        var service = Tokens.Service();
        for (var call = 0; call < 3; call++)
            (await http.PostAsync("/v1/usage", service, UsageBody(project, creator, model, 100, 10))).ShouldBe(HttpStatusCode.OK);

        // A plain user: the service routes stay closed to it with the same 403 and reason, its own account stays open.
        var user = Tokens.User(creator);
        var refusals = new List<string>();
        for (var call = 0; call < 3; call++)
        {
            var refused = await http.PostAsync("/v1/usage", user, UsageBody(project, creator, model, 100, 10));
            refused.ShouldBe(HttpStatusCode.Forbidden);
            refusals.Add(refused.Json.GetProperty("detail").GetString()!);
            (await http.GetAsync($"/v1/users/{creator}/billing", user)).ShouldBe(HttpStatusCode.OK);
        }

        Assert.Single(refusals.Distinct());
        Assert.Contains("service", refusals[0]);

        var admin = Tokens.Admin();
        for (var call = 0; call < 3; call++)
            (await http.PutAsync($"/v1/models/{model}/pricing", admin, "{\"inputPricePerMillion\":3,\"outputPricePerMillion\":15}")).ShouldBe(HttpStatusCode.Created);
        (await http.PutAsync($"/v1/models/{model}/pricing", service, "{\"inputPricePerMillion\":3,\"outputPricePerMillion\":15}")).ShouldBe(HttpStatusCode.Forbidden);

        // Only the token itself is remembered: the same claims under a wrong signature are still refused.
        var forged = service[..^4] + (service[^4..] == "AAAA" ? "BBBB" : "AAAA");
        (await http.PostAsync("/v1/usage", forged, UsageBody(project, creator, model, 100, 10))).ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_remembered_token_is_refused_once_it_has_expired()
    {
        // No clock skew, so the token's exp is the instant it stops being accepted, remembered or not.
        var port = PostgresServer.FreePort();
        await using var gateway = Program.BuildGateway([.. GatewayFixture.GatewayArgs(port, fixture.ConnectionString, fixture.ClusterId), "--Auth:ClockSkewSeconds=0"]);
        await gateway.StartAsync().WaitAsync(TimeSpan.FromMinutes(2));
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
        var ready = DateTime.UtcNow.AddMinutes(1);
        while ((await client.GetAsync("/health/ready", null)).Status != HttpStatusCode.OK)
        {
            if (DateTime.UtcNow > ready) throw new TimeoutException("The gateway did not become ready.");
            await Task.Delay(250);
        }

        var user = await NewUserAsync(http);
        // Real time (the bearer handler validates against the system clock): 10 s, at least 9 after exp's truncation
        // to whole seconds, so that both calls answer before it on a loaded machine.
        var lifetime = TimeSpan.FromSeconds(10);
        var issued = DateTime.UtcNow;
        var token = Tokens.Mint("service", Guid.NewGuid(), lifetime, now: issued);
        (await client.GetAsync($"/v1/users/{user}/billing", token)).ShouldBe(HttpStatusCode.OK);
        (await client.GetAsync($"/v1/users/{user}/billing", token)).ShouldBe(HttpStatusCode.OK);

        // exp has whole seconds: wait until it has certainly passed.
        var expired = issued + lifetime + TimeSpan.FromSeconds(1.2) - DateTime.UtcNow;
        if (expired > TimeSpan.Zero) await Task.Delay(expired);
        var refused = await client.GetAsync($"/v1/users/{user}/billing", token);
        refused.ShouldBe(HttpStatusCode.Unauthorized);
        Assert.Contains("not accepted", refused.Json.GetProperty("detail").GetString());

        await gateway.StopAsync(CancellationToken.None);
    }
}
