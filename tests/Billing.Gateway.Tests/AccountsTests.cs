using System.Net;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

[Collection(GatewayCollection.Name)]
public sealed class AccountsTests(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    [Fact]
    public async Task User_initialisation_is_201_with_10_0000_then_200_unchanged()
    {
        var id = Guid.NewGuid();
        var first = await http.PostAsync($"/v1/users/{id}/billing", Tokens.Service());
        first.ShouldBe(HttpStatusCode.Created);
        Assert.Equal(10.0000m, first.Json.GetProperty("balance").GetDecimal());
        Assert.Equal("user", first.Json.GetProperty("kind").GetString());
        Assert.Equal("USD", first.Json.GetProperty("currency").GetString());
        Assert.True(first.Json.GetProperty("initialCreditGranted").GetBoolean());
        Assert.Equal($"/v1/users/{id}/billing", first.Message.Headers.Location?.OriginalString);
        Assert.EndsWith("Z", first.Json.GetProperty("createdAt").GetString());

        var second = await http.PostAsync($"/v1/users/{id}/billing", Tokens.Admin());
        second.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(10.0000m, second.Json.GetProperty("balance").GetDecimal());

        var read = await http.GetAsync($"/v1/users/{id}/billing", Tokens.Service());
        read.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(id, read.Json.GetProperty("id").GetGuid());
        Assert.Equal(10.0000m, read.Json.GetProperty("balance").GetDecimal());
    }

    [Fact]
    public async Task Project_initialisation_grants_20_0000_to_the_first_project_only_and_conflicts_on_another_creator()
    {
        var creator = await NewUserAsync(http);
        var first = Guid.NewGuid();
        var created = await http.PostAsync($"/v1/projects/{first}/billing", Tokens.Service(), Json(new { creatorId = creator }));
        created.ShouldBe(HttpStatusCode.Created);
        Assert.Equal(20.0000m, created.Json.GetProperty("balance").GetDecimal());
        Assert.Equal("project", created.Json.GetProperty("kind").GetString());
        Assert.Equal(creator, created.Json.GetProperty("creatorId").GetGuid());

        var again = await http.PostAsync($"/v1/projects/{first}/billing", Tokens.Service(), Json(new { creatorId = creator }));
        again.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(20.0000m, again.Json.GetProperty("balance").GetDecimal());

        var second = Guid.NewGuid();
        var other = await http.PostAsync($"/v1/projects/{second}/billing", Tokens.Service(), Json(new { creatorId = creator }));
        other.ShouldBe(HttpStatusCode.Created);
        Assert.Equal(0m, other.Json.GetProperty("balance").GetDecimal());
        Assert.False(other.Json.GetProperty("initialCreditGranted").GetBoolean());

        var conflict = await http.PostAsync($"/v1/projects/{first}/billing", Tokens.Service(), Json(new { creatorId = Guid.NewGuid() }));
        conflict.ShouldBe(HttpStatusCode.Conflict);
        Assert.Equal(20.0000m, await BalanceAsync(http, "projects", first));
    }

    [Fact]
    public async Task Concurrent_first_projects_of_one_creator_get_exactly_one_credit()
    {
        var creator = await NewUserAsync(http);
        var projects = Enumerable.Range(0, 6).Select(_ => Guid.NewGuid()).ToArray();
        var results = await Task.WhenAll(projects.Select(p => http.PostAsync($"/v1/projects/{p}/billing", Tokens.Service(), Json(new { creatorId = creator }))));
        Assert.All(results, r => r.ShouldBe(HttpStatusCode.Created));
        Assert.Equal(1, results.Count(r => r.Json.GetProperty("balance").GetDecimal() == 20.0000m));
        Assert.Equal(5, results.Count(r => r.Json.GetProperty("balance").GetDecimal() == 0m));
    }

    [Fact]
    public async Task Accounts_never_initialised_are_404_and_malformed_ids_are_400()
    {
        (await http.GetAsync($"/v1/users/{Guid.NewGuid()}/billing", Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
        (await http.GetAsync($"/v1/projects/{Guid.NewGuid()}/billing", Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
        (await http.GetAsync("/v1/users/not-a-uuid/billing", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync("/v1/projects/123/billing", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/users/xyz/billing", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/projects/xyz/billing", Tokens.Service(), Json(new { creatorId = Guid.NewGuid() }))).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync($"/v1/users/{Guid.Empty}/billing", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Project_initialisation_without_or_with_a_malformed_creator_is_400()
    {
        var project = Guid.NewGuid();
        var missing = await http.PostAsync($"/v1/projects/{project}/billing", Tokens.Service(), "{}");
        missing.ShouldBe(HttpStatusCode.BadRequest);
        Assert.Contains("creatorId", missing.Json.GetProperty("detail").GetString());
        (await http.PostAsync($"/v1/projects/{project}/billing", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync($"/v1/projects/{project}/billing", Tokens.Service(), "{\"creatorId\":\"nope\"}")).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/projects/{project}/billing", Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
    }
}
