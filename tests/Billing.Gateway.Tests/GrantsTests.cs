using System.Net;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

/// <summary>The grants routes over real HTTP: statuses, idempotency, spending shown in history, roles, bad input.</summary>
[Collection(GatewayCollection.Name)]
public sealed class GrantsTests(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    [Fact]
    public async Task A_grant_is_201_then_200_for_its_id_credited_once_and_shown_in_history_and_the_list()
    {
        var user = await NewUserAsync(http);
        var grantId = Guid.NewGuid();
        var body = Json(new { grantId, amount = 25.00m, category = "promotional", priority = 10, description = "Launch promo" });

        var created = await http.PostAsync($"/v1/users/{user}/grants", Tokens.Admin(), body);
        var again = await http.PostAsync($"/v1/users/{user}/grants", Tokens.Admin(), body);

        created.ShouldBe(HttpStatusCode.Created);
        again.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(grantId, created.Json.GetProperty("grantId").GetGuid());
        Assert.Equal(("promotional", "active", "user", 10), (created.Json.GetProperty("category").GetString(), created.Json.GetProperty("status").GetString(),
            created.Json.GetProperty("scope").GetString(), created.Json.GetProperty("priority").GetInt32()));
        Assert.Equal("25.00", created.RawMember("remaining"));
        Assert.Equal(35.00m, await BalanceAsync(http, "users", user));

        var history = await http.GetAsync($"/v1/users/{user}/history", Tokens.Service());
        var credit = history.Json.GetProperty("items")[0];
        Assert.Equal("grant_credit", credit.GetProperty("reason").GetString());
        var draw = Assert.Single(credit.GetProperty("grants").EnumerateArray().ToArray());
        Assert.Equal((grantId, 25.00m), (draw.GetProperty("grantId").GetGuid(), draw.GetProperty("amount").GetDecimal()));

        var active = await http.GetAsync($"/v1/users/{user}/grants?status=active", Tokens.Service());
        active.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(2, active.Json.GetProperty("items").GetArrayLength()); // signup + this one
        var page = await http.GetAsync($"/v1/users/{user}/grants?limit=1", Tokens.Service());
        Assert.Equal(grantId, page.Json.GetProperty("items")[0].GetProperty("grantId").GetGuid()); // newest first
        var next = await http.GetAsync($"/v1/users/{user}/grants?limit=1&cursor={page.Json.GetProperty("nextCursor").GetString()}", Tokens.Service());
        Assert.Equal("10.0000", next.Json.GetProperty("items")[0].GetProperty("amount").GetRawText());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, next.Json.GetProperty("nextCursor").ValueKind);
    }

    [Fact]
    public async Task ReviewDefect_GrantRetriedAfterItsExpiryIs200WithTheStoredGrantNot400()
    {
        var user = await NewUserAsync(http);
        var grantId = Guid.NewGuid();
        // Real time (the gateway's silo has no test clock): 10 s ahead, so that creating it answers before its expiry on a
        // loaded machine too (after it, the creation is refused 400 as expiring before now).
        var expiresAt = DateTimeOffset.UtcNow.AddSeconds(10);
        var body = Json(new { grantId, amount = 2.00m, category = "promotional", expiresAt });
        var created = await http.PostAsync($"/v1/users/{user}/grants", Tokens.Admin(), body);
        created.ShouldBe(HttpStatusCode.Created);

        var pastExpiry = expiresAt.AddSeconds(0.5) - DateTimeOffset.UtcNow;
        if (pastExpiry > TimeSpan.Zero) await Task.Delay(pastExpiry); // past its expiry: a retry whose first answer was lost
        var retried = await http.PostAsync($"/v1/users/{user}/grants", Tokens.Admin(), body);
        var expiredNew = await http.PostAsync($"/v1/users/{user}/grants", Tokens.Admin(),
            Json(new { grantId = Guid.NewGuid(), amount = 2.00m, category = "promotional", expiresAt = DateTimeOffset.UtcNow.AddSeconds(-1) }));

        retried.ShouldBe(HttpStatusCode.OK);
        Assert.Equal((grantId, "expired"), (retried.Json.GetProperty("grantId").GetGuid(), retried.Json.GetProperty("status").GetString()));
        expiredNew.ShouldBe(HttpStatusCode.BadRequest); // a new grant expiring before now is still bad input
        Assert.Equal(10.0000m, await BalanceAsync(http, "users", user)); // credited once, expired once
    }

    [Fact]
    public async Task A_usage_draws_in_spending_order_across_grants_and_its_history_row_names_them()
    {
        var (project, user) = await NewProjectAsync(http);
        var model = await NewDollarPerTokenModelAsync(http);
        var first = await GrantAsync("projects", project, new { amount = 1m, category = "paid", priority = 0 });

        var usage = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 3, 0));

        usage.ShouldBe(HttpStatusCode.OK);
        var row = (await http.GetAsync($"/v1/projects/{project}/history", Tokens.Service())).Json.GetProperty("items")[0];
        var draws = row.GetProperty("grants").EnumerateArray().Select(d => (d.GetProperty("grantId").GetGuid(), d.GetProperty("amount").GetDecimal())).ToArray();
        Assert.Equal(2, draws.Length);
        Assert.Equal((first, -1m), draws[0]);
        Assert.Equal(-2m, draws[1].Item2); // the rest from the first-project grant
    }

    [Fact]
    public async Task A_void_takes_back_what_is_left_once_and_an_unknown_grant_is_404()
    {
        var user = await NewUserAsync(http);
        var grant = await GrantAsync("users", user, new { amount = 5m, category = "paid" });

        var voided = await http.PostAsync($"/v1/grants/{grant}/void", Tokens.Admin());
        var again = await http.PostAsync($"/v1/grants/{grant}/void", Tokens.Admin());
        var unknown = await http.PostAsync($"/v1/grants/{Guid.NewGuid()}/void", Tokens.Admin());
        var malformed = await http.PostAsync("/v1/grants/not-a-uuid/void", Tokens.Admin());

        voided.ShouldBe(HttpStatusCode.OK);
        again.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(("voided", 0m), (voided.Json.GetProperty("status").GetString(), voided.Json.GetProperty("remaining").GetDecimal()));
        unknown.ShouldBe(HttpStatusCode.NotFound);
        Assert.Equal("grant_not_found", unknown.Json.GetProperty("code").GetString());
        malformed.ShouldBe(HttpStatusCode.BadRequest);
        Assert.Equal(10m, await BalanceAsync(http, "users", user));
        var history = (await http.GetAsync($"/v1/users/{user}/history", Tokens.Service())).Json.GetProperty("items");
        Assert.Single(history.EnumerateArray(), r => r.GetProperty("reason").GetString() == "grant_voided");
    }

    [Fact]
    public async Task A_grant_that_starts_later_is_scheduled_and_not_yet_balance()
    {
        var user = await NewUserAsync(http);
        var effectiveAt = DateTime.UtcNow.AddDays(7).ToString("yyyy-MM-ddTHH:mm:ssZ");

        var grant = await http.PostAsync($"/v1/users/{user}/grants", Tokens.Admin(), $"{{\"amount\":3,\"category\":\"paid\",\"effectiveAt\":\"{effectiveAt}\"}}");

        grant.ShouldBe(HttpStatusCode.Created);
        Assert.Equal("scheduled", grant.Json.GetProperty("status").GetString());
        Assert.Equal(10m, await BalanceAsync(http, "users", user));
        var scheduled = await http.GetAsync($"/v1/users/{user}/grants?status=scheduled", Tokens.Service());
        Assert.Single(scheduled.Json.GetProperty("items").EnumerateArray());
    }

    [Theory]
    [InlineData("{\"amount\":0,\"category\":\"paid\"}")]
    [InlineData("{\"amount\":-1,\"category\":\"paid\"}")]
    [InlineData("{\"category\":\"paid\"}")]
    [InlineData("{\"amount\":1}")]
    [InlineData("{\"amount\":1,\"category\":\"gift\"}")]
    [InlineData("{\"amount\":1,\"category\":\"paid\",\"priority\":101}")]
    [InlineData("{\"amount\":1,\"category\":\"paid\",\"priority\":-1}")]
    [InlineData("{\"amount\":1,\"category\":\"paid\",\"priority\":1.5}")]
    [InlineData("{\"amount\":1,\"category\":\"paid\",\"effectiveAt\":\"2031-01-02T00:00:00Z\",\"expiresAt\":\"2031-01-01T00:00:00Z\"}")]
    [InlineData("{\"amount\":1,\"category\":\"paid\",\"expiresAt\":\"2001-01-01T00:00:00Z\"}")]
    [InlineData("{\"amount\":1,\"category\":\"paid\",\"grantId\":\"00000000-0000-0000-0000-000000000000\"}")]
    [InlineData("{\"amount\":1,\"category\":\"paid\",\"grantId\":\"nope\"}")]
    [InlineData("{\"amount\":1,")]
    [InlineData("{\"amount\":1,\"category\":\"paid\",\"description\":\"a\\u0000b\"}")] // was a 500: PostgreSQL text holds no NUL
    public async Task Bad_grants_are_400_and_change_nothing(string body)
    {
        var user = await NewUserAsync(http);

        var refused = await http.PostAsync($"/v1/users/{user}/grants", Tokens.Admin(), body);

        refused.ShouldBe(HttpStatusCode.BadRequest);
        Assert.Equal(10m, await BalanceAsync(http, "users", user));
        Assert.Single((await http.GetAsync($"/v1/users/{user}/grants", Tokens.Service())).Json.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Only_admins_grant_and_void_and_a_user_lists_only_their_own_grants()
    {
        var user = await NewUserAsync(http);
        var other = await NewUserAsync(http);
        var body = Json(new { amount = 1m, category = "paid" });
        var grant = await GrantAsync("users", user, new { amount = 1m, category = "paid" });

        (await http.PostAsync($"/v1/users/{user}/grants", Tokens.Service(), body)).ShouldBe(HttpStatusCode.Forbidden);
        (await http.PostAsync($"/v1/users/{user}/grants", Tokens.User(user), body)).ShouldBe(HttpStatusCode.Forbidden);
        (await http.PostAsync($"/v1/users/{user}/grants", null, body)).ShouldBe(HttpStatusCode.Unauthorized);
        (await http.PostAsync($"/v1/grants/{grant}/void", Tokens.Service())).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync($"/v1/users/{user}/grants", Tokens.User(user))).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync($"/v1/users/{other}/grants", Tokens.User(user))).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync($"/v1/users/{user}/grants?status=lapsed", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/users/{Guid.NewGuid()}/grants", Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
        (await http.PostAsync($"/v1/users/{Guid.NewGuid()}/grants", Tokens.Admin(), body)).ShouldBe(HttpStatusCode.NotFound);
        Assert.Equal(11m, await BalanceAsync(http, "users", user));
    }

    private async Task<Guid> GrantAsync(string collection, Guid account, object body)
    {
        var response = await http.PostAsync($"/v1/{collection}/{account}/grants", Tokens.Admin(), Json(body));
        response.ShouldBe(HttpStatusCode.Created);
        return response.Json.GetProperty("grantId").GetGuid();
    }
}
