using System.Net;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

[Collection(GatewayCollection.Name)]
public sealed class HistoryAndErrorsTests(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    [Fact]
    public async Task User_history_is_newest_first_sums_to_the_balance_and_pages_by_cursor()
    {
        var user = await NewUserAsync(http);
        var model = await NewModelAsync(http, "3.00", "15.00");
        for (var i = 0; i < 3; i++)
        {
            (await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 1234, outputTokens = 567 })))
                .ShouldBe(HttpStatusCode.OK);
        }

        var all = await http.GetAsync($"/v1/users/{user}/history", Tokens.Service());
        all.ShouldBe(HttpStatusCode.OK);
        var items = all.Json.GetProperty("items").EnumerateArray().ToArray();
        Assert.Equal(4, items.Length);
        Assert.Equal("ai_usage_personal", items[0].GetProperty("reason").GetString());
        Assert.Equal("signup_credit", items[^1].GetProperty("reason").GetString());
        Assert.Equal("-0.012207", items[0].GetProperty("amount").GetRawText());
        Assert.Equal(await BalanceAsync(http, "users", user), items.Sum(i => i.GetProperty("amount").GetDecimal()));
        Assert.Equal(System.Text.Json.JsonValueKind.Null, all.Json.GetProperty("nextCursor").ValueKind);

        var page1 = await http.GetAsync($"/v1/users/{user}/history?limit=3", Tokens.Service());
        page1.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(3, page1.Json.GetProperty("items").GetArrayLength());
        var cursor = page1.Json.GetProperty("nextCursor").GetString();
        Assert.False(string.IsNullOrEmpty(cursor));
        var page2 = await http.GetAsync($"/v1/users/{user}/history?limit=3&cursor={Uri.EscapeDataString(cursor!)}", Tokens.Service());
        page2.ShouldBe(HttpStatusCode.OK);
        var rest = page2.Json.GetProperty("items").EnumerateArray().ToArray();
        Assert.Single(rest);
        Assert.Equal("signup_credit", rest[0].GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Project_history_keeps_a_zero_fallback_row_and_bad_paging_is_400()
    {
        var (project, user) = await NewProjectAsync(http);
        var model = await NewDollarPerTokenModelAsync(http);
        (await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 15, 0))).ShouldBe(HttpStatusCode.OK);
        (await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 8, 0))).ShouldBe(HttpStatusCode.OK);

        var history = await http.GetAsync($"/v1/projects/{project}/history", Tokens.Service());
        history.ShouldBe(HttpStatusCode.OK);
        var items = history.Json.GetProperty("items").EnumerateArray().ToArray();
        Assert.Equal(new[] { "ai_usage_user_fallback", "ai_usage", "first_project_credit" }, items.Select(i => i.GetProperty("reason").GetString() ?? "").ToArray());
        Assert.Equal(0m, items[0].GetProperty("amount").GetDecimal());
        Assert.Equal("user", items[0].GetProperty("details").GetProperty("deducted_from").GetString()); // an object, not a string
        Assert.Equal(await BalanceAsync(http, "projects", project), items.Sum(i => i.GetProperty("amount").GetDecimal()));

        (await http.GetAsync($"/v1/projects/{project}/history?limit=0", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/projects/{project}/history?limit=501", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/projects/{project}/history?limit=ten", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/projects/{project}/history?cursor=abc", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/projects/{project}/history?limit=500", Tokens.Service())).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync("/v1/projects/nope/history", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/projects/{Guid.NewGuid()}/history", Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
        (await http.GetAsync($"/v1/users/{Guid.NewGuid()}/history", Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task ReviewDefect_Billing_errors_of_an_account_never_initialised_are_404_not_an_empty_list()
    {
        var (project, user) = await NewProjectAsync(http);

        // Accounts that exist and have no error: an empty page.
        foreach (var (scope, id) in new[] { ("user", user), ("project", project) })
        {
            var empty = await http.GetAsync($"/v1/billing-errors?scope={scope}&scopeId={id}", Tokens.Service());
            empty.ShouldBe(HttpStatusCode.OK);
            Assert.Empty(empty.Json.GetProperty("items").EnumerateArray());
        }

        // Accounts that were never initialised: 404, as history is (API.md: "account never initialised … 404").
        foreach (var scope in new[] { "user", "project" })
        {
            var missing = await http.GetAsync($"/v1/billing-errors?scope={scope}&scopeId={Guid.NewGuid()}", Tokens.Service());
            missing.ShouldBe(HttpStatusCode.NotFound);
            Assert.Equal("account_not_found", missing.Json.GetProperty("code").GetString());
        }

        var own = Guid.NewGuid(); // a plain user asking about their own account, never initialised
        (await http.GetAsync($"/v1/billing-errors?scope=user&scopeId={own}", Tokens.User(own))).ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Billing_errors_are_listed_resolved_and_filtered()
    {
        var user = await NewUserAsync(http);
        var model = await NewDollarPerTokenModelAsync(http);
        var refused = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 11, outputTokens = 0 }));
        refused.ShouldBe(HttpStatusCode.PaymentRequired);
        var errorId = refused.Json.GetProperty("billingErrorId").GetGuid();

        var open = await http.GetAsync($"/v1/billing-errors?scope=user&scopeId={user}&resolved=false", Tokens.Service());
        open.ShouldBe(HttpStatusCode.OK);
        var item = Assert.Single(open.Json.GetProperty("items").EnumerateArray().ToArray());
        Assert.Equal(errorId, item.GetProperty("id").GetGuid());
        Assert.Equal("user", item.GetProperty("scope").GetString());
        Assert.Equal(user, item.GetProperty("scopeId").GetGuid());
        Assert.False(item.GetProperty("resolved").GetBoolean());
        // details is the stored JSON as an object, not a string of JSON to parse a second time.
        var details = item.GetProperty("details");
        Assert.Equal(System.Text.Json.JsonValueKind.Object, details.ValueKind);
        Assert.Equal(11m, details.GetProperty("cost").GetDecimal());
        Assert.Equal("personal", details.GetProperty("scope").GetString());

        var resolved = await http.PostAsync($"/v1/billing-errors/{errorId}/resolve", Tokens.Service());
        resolved.ShouldBe(HttpStatusCode.OK);
        Assert.True(resolved.Json.GetProperty("resolved").GetBoolean());
        Assert.Equal(errorId, resolved.Json.GetProperty("id").GetGuid());

        var stillOpen = await http.GetAsync($"/v1/billing-errors?scope=user&scopeId={user}&resolved=false", Tokens.Service());
        Assert.Equal(0, stillOpen.Json.GetProperty("items").GetArrayLength());
        var closed = await http.GetAsync($"/v1/billing-errors?scope=user&scopeId={user}&resolved=true", Tokens.Service());
        Assert.Equal(1, closed.Json.GetProperty("items").GetArrayLength());

        (await http.PostAsync($"/v1/billing-errors/{Guid.NewGuid()}/resolve", Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
        (await http.PostAsync("/v1/billing-errors/zzz/resolve", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/billing-errors?scope=team&scopeId={user}", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync("/v1/billing-errors?scope=user&scopeId=bad", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync("/v1/billing-errors?scope=user", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/billing-errors?scope=user&scopeId={user}&resolved=maybe", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
    }
}
