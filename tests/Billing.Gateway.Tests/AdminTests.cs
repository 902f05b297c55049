using System.Net;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

[Collection(GatewayCollection.Name)]
public sealed class AdminTests(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    [Fact]
    public async Task Pricing_is_added_with_201_and_read_as_current_and_scheduled()
    {
        var model = Guid.NewGuid();
        var now = await http.PutAsync($"/v1/models/{model}/pricing", Tokens.Admin(),
            "{\"inputPricePerMillion\":3.00,\"outputPricePerMillion\":15.00,\"currency\":\"USD\"}");
        now.ShouldBe(HttpStatusCode.Created);
        Assert.Equal("3.00", now.RawMember("inputPricePerMillion"));
        Assert.Equal("15.00", now.RawMember("outputPricePerMillion"));
        Assert.Equal(model, now.Json.GetProperty("modelId").GetGuid());

        var later = DateTime.UtcNow.AddDays(30).ToString("yyyy-MM-ddTHH:mm:ssZ");
        var scheduled = await http.PutAsync($"/v1/models/{model}/pricing", Tokens.Admin(),
            $"{{\"inputPricePerMillion\":4.50,\"outputPricePerMillion\":16.25,\"effectiveFrom\":\"{later}\"}}");
        scheduled.ShouldBe(HttpStatusCode.Created);
        Assert.Equal("USD", scheduled.Json.GetProperty("currency").GetString());

        var pricing = await http.GetAsync($"/v1/models/{model}/pricing", Tokens.Service());
        pricing.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("3.00", pricing.Json.GetProperty("current").GetProperty("inputPricePerMillion").GetRawText());
        var next = Assert.Single(pricing.Json.GetProperty("scheduled").EnumerateArray().ToArray());
        Assert.Equal("16.25", next.GetProperty("outputPricePerMillion").GetRawText());

        var none = await http.GetAsync($"/v1/models/{Guid.NewGuid()}/pricing", Tokens.Service());
        none.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, none.Json.GetProperty("current").ValueKind);
    }

    [Fact]
    public async Task Inbound_decimals_keep_every_digit_and_scale()
    {
        var model = Guid.NewGuid();
        var price = await http.PutAsync($"/v1/models/{model}/pricing", Tokens.Admin(),
            "{\"inputPricePerMillion\":0.123456789012,\"outputPricePerMillion\":12345678.5000}");
        price.ShouldBe(HttpStatusCode.Created);
        Assert.Equal("0.123456789012", price.RawMember("inputPricePerMillion"));
        Assert.Equal("12345678.5000", price.RawMember("outputPricePerMillion"));

        var user = await NewUserAsync(http);
        var credit = await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), "{\"amount\":0.123456789012345678901234}");
        credit.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("10.123456789012345678901234", credit.RawMember("balance"));
    }

    /// <summary>
    /// A credit whose sum with the balance has more digits than a decimal holds (29) must be refused or kept exact:
    /// the balance must stay the sum of the history amounts (I1), digit for digit.
    /// </summary>
    [Fact]
    public async Task A_credit_a_decimal_cannot_add_exactly_is_refused_or_conserved()
    {
        var user = await NewUserAsync(http);
        var credit = await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), "{\"amount\":0.1000000000000000000000000001}");
        Assert.True(credit.Code is 200 or 400, credit.ToString());
        var history = await http.GetAsync($"/v1/users/{user}/history", Tokens.Service());
        var amounts = history.Json.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("amount").GetRawText()).ToArray();
        var balance = (await http.GetAsync($"/v1/users/{user}/billing", Tokens.Service())).Json.GetProperty("balance").GetRawText();
        if (credit.Code == 400) Assert.Equal(10.0000m, decimal.Parse(balance, System.Globalization.CultureInfo.InvariantCulture));
        else Assert.True(balance == "10.1000000000000000000000000001", $"balance {balance} but history amounts [{string.Join(", ", amounts)}]");
    }

    [Fact]
    public async Task Pricing_is_read_by_service_and_admin_not_by_plain_users()
    {
        var model = await NewModelAsync(http);
        (await http.GetAsync($"/v1/models/{model}/pricing", Tokens.Service())).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync($"/v1/models/{model}/pricing", Tokens.Admin())).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync($"/v1/models/{model}/pricing", Tokens.User(Guid.NewGuid()))).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync("/v1/models/not-a-model/pricing", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("{\"inputPricePerMillion\":-1,\"outputPricePerMillion\":15}")]
    [InlineData("{\"inputPricePerMillion\":1,\"outputPricePerMillion\":-0.01}")]
    [InlineData("{\"inputPricePerMillion\":0,\"outputPricePerMillion\":0}")]
    [InlineData("{\"outputPricePerMillion\":15}")]
    [InlineData("{\"inputPricePerMillion\":\"3.00\",\"outputPricePerMillion\":15}")]
    [InlineData("{\"inputPricePerMillion\":3,\"outputPricePerMillion\":15,\"currency\":\"dollars\"}")]
    [InlineData("{\"inputPricePerMillion\":3,\"outputPricePerMillion\":15,\"effectiveFrom\":\"tomorrow\"}")]
    public async Task Bad_prices_are_400(string body)
    {
        var model = Guid.NewGuid();
        (await http.PutAsync($"/v1/models/{model}/pricing", Tokens.Admin(), body)).ShouldBe(HttpStatusCode.BadRequest);
        var pricing = await http.GetAsync($"/v1/models/{model}/pricing", Tokens.Service());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, pricing.Json.GetProperty("current").ValueKind);
    }

    [Fact]
    public async Task Credits_top_up_idempotently_and_resolve_open_errors()
    {
        var user = await NewUserAsync(http);
        var model = await NewDollarPerTokenModelAsync(http);
        (await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 11, outputTokens = 0 })))
            .ShouldBe(HttpStatusCode.PaymentRequired);

        var creditId = Guid.NewGuid();
        var body = $"{{\"amount\":5.00,\"reason\":\"top_up\",\"creditId\":\"{creditId}\"}}";
        var topUp = await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), body);
        topUp.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(15.0000m, topUp.Json.GetProperty("balance").GetDecimal());
        var again = await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), body);
        again.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(15.0000m, await BalanceAsync(http, "users", user));

        var open = await http.GetAsync($"/v1/billing-errors?scope=user&scopeId={user}&resolved=false", Tokens.Service());
        Assert.Equal(0, open.Json.GetProperty("items").GetArrayLength());

        var history = await http.GetAsync($"/v1/users/{user}/history", Tokens.Service());
        Assert.Equal("top_up", history.Json.GetProperty("items")[0].GetProperty("reason").GetString());

        var (project, _) = await NewProjectAsync(http);
        var projectTopUp = await http.PostAsync($"/v1/projects/{project}/credits", Tokens.Admin(), "{\"amount\":0.5}");
        projectTopUp.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(20.5m, projectTopUp.Json.GetProperty("balance").GetDecimal());
    }

    [Theory]
    [InlineData("{\"amount\":0}")]
    [InlineData("{\"amount\":-5}")]
    [InlineData("{}")]
    [InlineData("{\"amount\":\"5\"}")]
    [InlineData("{\"amount\":5,\"reason\":\"gift\"}")]
    [InlineData("{\"amount\":5,\"creditId\":\"x\"}")]
    public async Task Bad_credits_are_400_and_change_nothing(string body)
    {
        var user = await NewUserAsync(http);
        (await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), body)).ShouldBe(HttpStatusCode.BadRequest);
        Assert.Equal(10.0000m, await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task Credits_and_plans_of_unknown_accounts_are_404()
    {
        (await http.PostAsync($"/v1/users/{Guid.NewGuid()}/credits", Tokens.Admin(), "{\"amount\":5}")).ShouldBe(HttpStatusCode.NotFound);
        (await http.PostAsync($"/v1/projects/{Guid.NewGuid()}/credits", Tokens.Admin(), "{\"amount\":5}")).ShouldBe(HttpStatusCode.NotFound);
        (await http.PutAsync($"/v1/users/{Guid.NewGuid()}/plan", Tokens.Admin(), "{\"isPro\":true,\"monthlyQuota\":50.00}")).ShouldBe(HttpStatusCode.NotFound);
        (await http.PutAsync($"/v1/projects/{Guid.NewGuid()}/plan", Tokens.Admin(), "{\"isPro\":true,\"monthlyQuota\":50.00}")).ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Plans_change_to_pro_with_a_quota_that_usage_draws_from_first()
    {
        var (project, user) = await NewProjectAsync(http);
        var plan = await http.PutAsync($"/v1/projects/{project}/plan", Tokens.Admin(), "{\"isPro\":true,\"monthlyQuota\":50.00}");
        plan.ShouldBe(HttpStatusCode.OK);
        Assert.True(plan.Json.GetProperty("isPro").GetBoolean());
        Assert.Equal("50.00", plan.RawMember("monthlyQuota"));
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, plan.Json.GetProperty("cycleStart").ValueKind);

        var model = await NewModelAsync(http, "3.00", "15.00");
        var usage = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 1234, 567));
        usage.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(20.0000m, await BalanceAsync(http, "projects", project));
        var account = await http.GetAsync($"/v1/projects/{project}/billing", Tokens.Service());
        Assert.Equal(0.012207m, account.Json.GetProperty("monthUsed").GetDecimal());

        var userPlan = await http.PutAsync($"/v1/users/{user}/plan", Tokens.Admin(), "{\"isPro\":false}");
        userPlan.ShouldBe(HttpStatusCode.OK);
        Assert.False(userPlan.Json.GetProperty("isPro").GetBoolean());

        (await http.PutAsync($"/v1/users/{user}/plan", Tokens.Admin(), "{\"isPro\":true}")).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PutAsync($"/v1/users/{user}/plan", Tokens.Admin(), "{\"isPro\":true,\"monthlyQuota\":-1}")).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PutAsync($"/v1/users/{user}/plan", Tokens.Admin(), "{\"monthlyQuota\":5}")).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PutAsync($"/v1/users/{user}/plan", Tokens.Admin(), "{\"isPro\":\"yes\",\"monthlyQuota\":5}")).ShouldBe(HttpStatusCode.BadRequest);
    }
}
