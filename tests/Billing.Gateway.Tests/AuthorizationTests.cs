using System.Net;
using Billing.Client.Hosting;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

[Collection(GatewayCollection.Name)]
public sealed class AuthorizationTests(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    /// <summary>Every /v1 route, with a body good enough to get past binding.</summary>
    public static TheoryData<string, string, string?> Routes()
    {
        var id = Guid.NewGuid();
        return new TheoryData<string, string, string?>
        {
            { "POST", $"/v1/users/{id}/billing", null },
            { "GET", $"/v1/users/{id}/billing", null },
            { "POST", $"/v1/projects/{id}/billing", $"{{\"creatorId\":\"{id}\"}}" },
            { "GET", $"/v1/projects/{id}/billing", null },
            { "POST", "/v1/usage", UsageBody(id, id, id, 1, 1) },
            { "POST", $"/v1/users/{id}/usage", $"{{\"modelId\":\"{id}\",\"inputTokens\":1,\"outputTokens\":1}}" },
            { "POST", "/v1/balance-checks", $"{{\"userId\":\"{id}\",\"modelId\":\"{id}\",\"estimatedInputTokens\":1,\"estimatedOutputTokens\":1}}" },
            { "GET", $"/v1/users/{id}/history", null },
            { "GET", $"/v1/projects/{id}/history", null },
            { "GET", $"/v1/billing-errors?scope=user&scopeId={id}", null },
            { "POST", $"/v1/billing-errors/{id}/resolve", null },
            { "PUT", $"/v1/models/{id}/pricing", "{\"inputPricePerMillion\":1,\"outputPricePerMillion\":1}" },
            { "GET", $"/v1/models/{id}/pricing", null },
            { "POST", $"/v1/users/{id}/credits", "{\"amount\":1}" },
            { "POST", $"/v1/projects/{id}/credits", "{\"amount\":1}" },
            { "PUT", $"/v1/users/{id}/plan", "{\"isPro\":false}" },
            { "PUT", $"/v1/projects/{id}/plan", "{\"isPro\":false}" },
        };
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Every_v1_route_refuses_missing_and_invalid_tokens_with_401(string method, string path, string? body)
    {
        var sub = Guid.NewGuid();
        var wrongKey = new AuthOptions { SigningKey = "another-key-entirely-0123456789-abcdefghijklmnopq" };
        var invalid = new[]
        {
            null, // no token
            "not-a-jwt",
            Tokens.Mint("admin", sub, auth: wrongKey), // bad signature
            Tokens.Mint("admin", sub, TimeSpan.FromMinutes(5), now: DateTime.UtcNow.AddHours(-1)), // expired
            Tokens.Mint("admin", sub, auth: new AuthOptions { SigningKey = GatewayFixture.SigningKey, Audience = "other-api" }), // wrong audience
            Tokens.Mint("admin", sub, auth: new AuthOptions { SigningKey = GatewayFixture.SigningKey, Issuer = "someone-else" }), // wrong issuer
            Tokens.AlgNone("admin", sub), // alg none
        };
        foreach (var token in invalid)
        {
            var response = await http.SendAsync(new HttpMethod(method), path, token, body);
            Assert.True(response.Status == HttpStatusCode.Unauthorized, $"{method} {path} with token '{token}': {response}");
        }
    }

    [Fact]
    public async Task Tampered_payload_is_401()
    {
        var user = await NewUserAsync(http);
        var token = Tokens.User(user);
        var parts = token.Split('.');
        var elevated = Tokens.Admin(user).Split('.')[1];
        (await http.GetAsync($"/v1/users/{user}/billing", $"{parts[0]}.{elevated}.{parts[2]}")).ShouldBe(HttpStatusCode.Unauthorized);
        (await http.GetAsync($"/v1/users/{user}/billing", token)).ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Plain_users_read_only_their_own_account_history_errors_and_projects_they_created()
    {
        var (project, owner) = await NewProjectAsync(http);
        var stranger = await NewUserAsync(http);
        var ownerToken = Tokens.User(owner);
        var strangerToken = Tokens.User(stranger);

        (await http.GetAsync($"/v1/users/{owner}/billing", ownerToken)).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync($"/v1/users/{owner}/history", ownerToken)).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync($"/v1/billing-errors?scope=user&scopeId={owner}", ownerToken)).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync($"/v1/projects/{project}/billing", ownerToken)).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync($"/v1/projects/{project}/history", ownerToken)).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync($"/v1/billing-errors?scope=project&scopeId={project}", ownerToken)).ShouldBe(HttpStatusCode.OK);

        (await http.GetAsync($"/v1/users/{owner}/billing", strangerToken)).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync($"/v1/users/{owner}/history", strangerToken)).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync($"/v1/billing-errors?scope=user&scopeId={owner}", strangerToken)).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync($"/v1/projects/{project}/billing", strangerToken)).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync($"/v1/projects/{project}/history", strangerToken)).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync($"/v1/billing-errors?scope=project&scopeId={project}", strangerToken)).ShouldBe(HttpStatusCode.Forbidden);
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Plain_users_may_not_write_and_service_may_not_use_admin_routes(string method, string path, string? body)
    {
        var isRead = method == "GET" && !path.Contains("/pricing");
        var isAdmin = path.Contains("/credits") || path.Contains("/plan") || (method == "PUT" && path.Contains("/pricing"));
        var plain = await http.SendAsync(new HttpMethod(method), path, Tokens.User(Guid.NewGuid()), body);
        if (!isRead) Assert.True(plain.Status == HttpStatusCode.Forbidden, $"plain user {method} {path}: {plain}");
        var service = await http.SendAsync(new HttpMethod(method), path, Tokens.Service(), body);
        if (isAdmin) Assert.True(service.Status == HttpStatusCode.Forbidden, $"service {method} {path}: {service}");
        else Assert.NotEqual(HttpStatusCode.Forbidden, service.Status);
        var admin = await http.SendAsync(new HttpMethod(method), path, Tokens.Admin(), body);
        Assert.NotEqual(HttpStatusCode.Forbidden, admin.Status);
        Assert.NotEqual(HttpStatusCode.Unauthorized, admin.Status);
    }

    [Fact]
    public async Task Problem_bodies_for_401_and_403_are_problem_json()
    {
        var unauthorized = await http.GetAsync($"/v1/users/{Guid.NewGuid()}/billing", null);
        unauthorized.ShouldBe(HttpStatusCode.Unauthorized);
        Assert.Equal(401, unauthorized.Json.GetProperty("status").GetInt32());
        var forbidden = await http.PutAsync($"/v1/users/{Guid.NewGuid()}/plan", Tokens.Service(), "{\"isPro\":false}");
        forbidden.ShouldBe(HttpStatusCode.Forbidden);
        Assert.Equal(403, forbidden.Json.GetProperty("status").GetInt32());
    }
}
