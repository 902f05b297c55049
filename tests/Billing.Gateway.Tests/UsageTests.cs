using System.Net;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

[Collection(GatewayCollection.Name)]
public sealed class UsageTests(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    [Fact]
    public async Task Usage_cost_is_exact_decimal_in_the_raw_json()
    {
        var (project, user) = await NewProjectAsync(http);
        var model = await NewModelAsync(http, "3.00", "15.00");
        var usage = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 1234, 567));
        usage.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("0.012207", usage.RawMember("cost"));
        Assert.Equal("project", usage.Json.GetProperty("deductedFrom").GetString());
        Assert.Equal(19.987793m, usage.Json.GetProperty("balanceAfter").GetDecimal());
        Assert.Equal("USD", usage.Json.GetProperty("currency").GetString());
        Assert.Equal(1234, usage.Json.GetProperty("inputTokens").GetInt64());
        Assert.Equal(567, usage.Json.GetProperty("outputTokens").GetInt64());
        Assert.Equal(19.987793m, await BalanceAsync(http, "projects", project));
    }

    [Fact]
    public async Task Project_usage_falls_back_to_the_user_when_the_project_cannot_pay_the_whole_cost()
    {
        var (project, user) = await NewProjectAsync(http);
        var model = await NewDollarPerTokenModelAsync(http);
        var byProject = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 15, 0));
        byProject.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("project", byProject.Json.GetProperty("deductedFrom").GetString());

        var byUser = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 8, 0));
        byUser.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("user", byUser.Json.GetProperty("deductedFrom").GetString());
        Assert.Equal(2m, byUser.Json.GetProperty("balanceAfter").GetDecimal());
        Assert.Equal(5m, await BalanceAsync(http, "projects", project));
        Assert.Equal(2m, await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task Neither_account_can_pay_is_402_with_billingErrorId_and_one_stored_error()
    {
        var (project, user) = await NewProjectAsync(http);
        var model = await NewDollarPerTokenModelAsync(http);
        var usageId = Guid.NewGuid();
        var refused = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 25, 0, usageId));
        refused.ShouldBe(HttpStatusCode.PaymentRequired);
        var errorId = refused.Json.GetProperty("billingErrorId").GetGuid();
        Assert.Equal(402, refused.Json.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(refused.Json.GetProperty("detail").GetString()));

        var repeat = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 25, 0, usageId));
        repeat.ShouldBe(HttpStatusCode.PaymentRequired);
        Assert.Equal(errorId, repeat.Json.GetProperty("billingErrorId").GetGuid());

        var errors = await http.GetAsync($"/v1/billing-errors?scope=project&scopeId={project}", Tokens.Service());
        errors.ShouldBe(HttpStatusCode.OK);
        var items = errors.Json.GetProperty("items").EnumerateArray().ToArray();
        Assert.Single(items);
        Assert.Equal(errorId, items[0].GetProperty("id").GetGuid());
        Assert.Equal("insufficient_balance", items[0].GetProperty("errorType").GetString());
        Assert.Equal(20.0000m, await BalanceAsync(http, "projects", project));
        Assert.Equal(10.0000m, await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task Personal_usage_is_paid_by_the_user_and_402_when_it_cannot()
    {
        var user = await NewUserAsync(http);
        var model = await NewModelAsync(http, "3.00", "15.00");
        var paid = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 1234, outputTokens = 567 }));
        paid.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("user", paid.Json.GetProperty("deductedFrom").GetString());
        Assert.Equal("0.012207", paid.RawMember("cost"));
        Assert.Equal(9.987793m, await BalanceAsync(http, "users", user));

        var expensive = await NewDollarPerTokenModelAsync(http);
        var refused = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = expensive, inputTokens = 11, outputTokens = 0 }));
        refused.ShouldBe(HttpStatusCode.PaymentRequired);
        Assert.Equal(System.Text.Json.JsonValueKind.String, refused.Json.GetProperty("billingErrorId").ValueKind);
        Assert.Equal(9.987793m, await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task Repeated_usage_id_in_the_body_returns_the_first_result_and_charges_once()
    {
        var (project, user) = await NewProjectAsync(http);
        var model = await NewModelAsync(http, "3.00", "15.00");
        var usageId = Guid.NewGuid();
        var first = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 1234, 567, usageId));
        var second = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 1234, 567, usageId));
        first.ShouldBe(HttpStatusCode.OK);
        second.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(usageId, first.Json.GetProperty("usageId").GetGuid());
        Assert.Equal(first.Body, second.Body);
        Assert.Equal(19.987793m, await BalanceAsync(http, "projects", project));
    }

    [Fact]
    public async Task Repeated_idempotency_key_header_returns_the_first_result_and_charges_once()
    {
        var user = await NewUserAsync(http);
        var model = await NewModelAsync(http, "3.00", "15.00");
        var key = Guid.NewGuid().ToString();
        var headers = new Dictionary<string, string> { ["Idempotency-Key"] = key };
        var body = Json(new { modelId = model, inputTokens = 1234, outputTokens = 567 });
        var first = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), body, headers);
        var second = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), body, headers);
        first.ShouldBe(HttpStatusCode.OK);
        second.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(key, first.Json.GetProperty("usageId").GetString());
        Assert.Equal(first.Body, second.Body);
        Assert.Equal(9.987793m, await BalanceAsync(http, "users", user));

        // Same id in body and header is fine; a different one, or a header that is not a UUID, is 400.
        var same = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(),
            Json(new { modelId = model, inputTokens = 1234, outputTokens = 567, usageId = Guid.Parse(key) }), headers);
        same.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(first.Body, same.Body);
        var differ = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(),
            Json(new { modelId = model, inputTokens = 1, outputTokens = 1, usageId = Guid.NewGuid() }), headers);
        differ.ShouldBe(HttpStatusCode.BadRequest);
        var notUuid = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), body, new Dictionary<string, string> { ["Idempotency-Key"] = "retry-1" });
        notUuid.ShouldBe(HttpStatusCode.BadRequest);
        Assert.Equal(9.987793m, await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task Without_usage_id_each_call_gets_a_new_one()
    {
        var user = await NewUserAsync(http);
        var model = await NewModelAsync(http, "3.00", "15.00");
        var body = Json(new { modelId = model, inputTokens = 1000, outputTokens = 0 });
        var a = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), body);
        var b = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), body);
        Assert.NotEqual(a.Json.GetProperty("usageId").GetGuid(), b.Json.GetProperty("usageId").GetGuid());
        Assert.Equal(9.994m, await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task No_price_or_other_currency_is_422_and_unknown_accounts_are_404()
    {
        var (project, user) = await NewProjectAsync(http);
        var unpriced = Guid.NewGuid();
        (await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, unpriced, 10, 10))).ShouldBe(HttpStatusCode.UnprocessableEntity);
        var euro = await NewModelAsync(http, "3.00", "15.00", "EUR");
        (await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, euro, 10, 10))).ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = euro, inputTokens = 10, outputTokens = 10 })))
            .ShouldBe(HttpStatusCode.UnprocessableEntity);

        var model = await NewModelAsync(http);
        (await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(Guid.NewGuid(), user, model, 10, 10))).ShouldBe(HttpStatusCode.NotFound);
        (await http.PostAsync($"/v1/users/{Guid.NewGuid()}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 10, outputTokens = 10 })))
            .ShouldBe(HttpStatusCode.NotFound);
        Assert.Equal(20.0000m, await BalanceAsync(http, "projects", project));
        Assert.Equal(10.0000m, await BalanceAsync(http, "users", user));
    }

    [Theory]
    [InlineData("-1", "10")]
    [InlineData("10", "-5")]
    [InlineData("1.5", "10")]
    [InlineData("10", "2e3")]
    [InlineData("\"10\"", "10")]
    [InlineData("null", "10")]
    [InlineData("99999999999999999999", "10")]
    public async Task Negative_non_integer_or_string_tokens_are_400_and_charge_nothing(string input, string output)
    {
        var (project, user) = await NewProjectAsync(http);
        var model = await NewModelAsync(http);
        var body = $"{{\"projectId\":\"{project}\",\"userId\":\"{user}\",\"modelId\":\"{model}\",\"inputTokens\":{input},\"outputTokens\":{output}}}";
        var response = await http.PostAsync("/v1/usage", Tokens.Service(), body);
        response.ShouldBe(HttpStatusCode.BadRequest);
        Assert.Equal(20.0000m, await BalanceAsync(http, "projects", project));
    }

    [Fact]
    public async Task Missing_fields_are_400_naming_the_field()
    {
        var (project, user) = await NewProjectAsync(http);
        var model = await NewModelAsync(http);
        var missingModel = await http.PostAsync("/v1/usage", Tokens.Service(), Json(new { projectId = project, userId = user, inputTokens = 1, outputTokens = 1 }));
        missingModel.ShouldBe(HttpStatusCode.BadRequest);
        Assert.Contains("modelId", missingModel.Json.GetProperty("detail").GetString());
        var missingTokens = await http.PostAsync("/v1/usage", Tokens.Service(), Json(new { projectId = project, userId = user, modelId = model, inputTokens = 1 }));
        missingTokens.ShouldBe(HttpStatusCode.BadRequest);
        Assert.Contains("outputTokens", missingTokens.Json.GetProperty("detail").GetString());
        (await http.PostAsync("/v1/usage", Tokens.Service(), "")).ShouldBe(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Balance_check_is_sufficient_only_when_one_account_alone_can_pay()
    {
        var (project, user) = await NewProjectAsync(http);
        var priced = await NewModelAsync(http, "1.00", "2.00");
        var check = await http.PostAsync("/v1/balance-checks", Tokens.Service(),
            Json(new { projectId = project, userId = user, modelId = priced, estimatedInputTokens = 5000, estimatedOutputTokens = 2000 }));
        check.ShouldBe(HttpStatusCode.OK);
        Assert.True(check.Json.GetProperty("sufficient").GetBoolean());
        Assert.Equal(0.009m, check.Json.GetProperty("estimatedCost").GetDecimal());
        Assert.Equal(20.0000m, check.Json.GetProperty("projectAvailable").GetDecimal());
        Assert.Equal(10.0000m, check.Json.GetProperty("userAvailable").GetDecimal());

        // 25 is more than either account holds (20 and 10), though less than both together: not sufficient (seed defect 1).
        var dollar = await NewDollarPerTokenModelAsync(http);
        var split = await http.PostAsync("/v1/balance-checks", Tokens.Service(),
            Json(new { projectId = project, userId = user, modelId = dollar, estimatedInputTokens = 25, estimatedOutputTokens = 0 }));
        split.ShouldBe(HttpStatusCode.OK);
        Assert.False(split.Json.GetProperty("sufficient").GetBoolean());

        var personal = await http.PostAsync("/v1/balance-checks", Tokens.Service(),
            Json(new { userId = user, modelId = dollar, estimatedInputTokens = 5, estimatedOutputTokens = 0 }));
        personal.ShouldBe(HttpStatusCode.OK);
        Assert.True(personal.Json.GetProperty("sufficient").GetBoolean());

        (await http.PostAsync("/v1/balance-checks", Tokens.Service(), Json(new { userId = user, modelId = Guid.NewGuid(), estimatedInputTokens = 5, estimatedOutputTokens = 0 })))
            .ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await http.PostAsync("/v1/balance-checks", Tokens.Service(), Json(new { userId = user, modelId = dollar, estimatedInputTokens = -5, estimatedOutputTokens = 0 })))
            .ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/balance-checks", Tokens.Service(), Json(new { modelId = dollar, estimatedInputTokens = 5, estimatedOutputTokens = 0 })))
            .ShouldBe(HttpStatusCode.BadRequest);
    }
}
