using System.Net;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

/// <summary>Issue 9, defects 1 and 4, over real HTTP.</summary>
[Collection(GatewayCollection.Name)]
public sealed class ReviewDefectTests_Rules(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    [Fact]
    public async Task ReviewDefect01_FallbackToAnUninitialisedUserIs404AndTheSameUsageIdSucceedsOnceTheUserExists()
    {
        var user = Guid.NewGuid(); // creates a project, but has no personal account yet
        var project = Guid.NewGuid();
        (await http.PostAsync($"/v1/projects/{project}/billing", Tokens.Service(), Json(new { creatorId = user }))).ShouldBe(HttpStatusCode.Created);
        var model = await NewDollarPerTokenModelAsync(http);
        (await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 15, 0))).ShouldBe(HttpStatusCode.OK); // project: 5 left
        var usageId = Guid.NewGuid();

        var notFound = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 8, 0, usageId));

        notFound.ShouldBe(HttpStatusCode.NotFound);
        Assert.False(notFound.Json.TryGetProperty("billingErrorId", out _));
        var errors = await http.GetAsync($"/v1/billing-errors?scope=project&scopeId={project}", Tokens.Service());
        errors.ShouldBe(HttpStatusCode.OK);
        Assert.Empty(errors.Json.GetProperty("items").EnumerateArray());

        (await http.PostAsync($"/v1/users/{user}/billing", Tokens.Service())).ShouldBe(HttpStatusCode.Created);
        var paid = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 8, 0, usageId));

        paid.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("user", paid.Json.GetProperty("deductedFrom").GetString());
        Assert.Equal(2m, paid.Json.GetProperty("balanceAfter").GetDecimal());
        Assert.Equal(5m, await BalanceAsync(http, "projects", project));
    }

    [Fact]
    public async Task ReviewDefect_A_member_a_route_does_not_take_is_a_400_and_changes_nothing_so_a_misspelt_id_cannot_credit_twice()
    {
        var user = await NewUserAsync(http);
        var (project, member) = await NewProjectAsync(http);
        var model = await NewDollarPerTokenModelAsync(http);
        var id = Guid.NewGuid();

        // Sent twice each, as a client retrying would: with the id ignored, each copy was a new top-up or usage.
        var answers = new List<ApiResponse>();
        for (var copy = 0; copy < 2; copy++)
        {
            answers.Add(await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), $"{{\"amount\":5,\"credit_id\":\"{id}\"}}"));
            answers.Add(await http.PostAsync("/v1/usage", Tokens.Service(),
                $"{{\"usage_id\":\"{id}\",\"projectId\":\"{project}\",\"userId\":\"{member}\",\"modelId\":\"{model}\",\"inputTokens\":1,\"outputTokens\":0}}"));
        }

        Assert.All(answers, a => a.ShouldBe(HttpStatusCode.BadRequest));
        Assert.Contains("'credit_id'", answers[0].Json.GetProperty("detail").GetString());
        Assert.Contains("'usage_id'", answers[1].Json.GetProperty("detail").GetString());
        Assert.DoesNotContain("Billing.", answers[0].Json.GetProperty("detail").GetString()); // no type names of ours
        Assert.Equal(10.0000m, await BalanceAsync(http, "users", user));
        Assert.Equal(20.0000m, await BalanceAsync(http, "projects", project));
    }

    [Fact]
    public async Task ReviewDefect04_The402OfAProjectDoesNotShowTheMembersPersonalBalance()
    {
        var (project, user) = await NewProjectAsync(http); // project 20.0000, user 10.0000
        var model = await NewDollarPerTokenModelAsync(http);

        var refused = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 25, 0));

        refused.ShouldBe(HttpStatusCode.PaymentRequired);
        var errors = await http.GetAsync($"/v1/billing-errors?scope=project&scopeId={project}", Tokens.Service());
        var item = Assert.Single(errors.Json.GetProperty("items").EnumerateArray());
        foreach (var text in new[] { refused.Body, item.GetRawText() })
        {
            Assert.DoesNotContain("10.0000", text);
            Assert.DoesNotContain($"user account {user}", text);
        }

        Assert.Contains("could not cover it", refused.Json.GetProperty("detail").GetString());
    }
}
