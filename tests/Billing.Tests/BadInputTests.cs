namespace Billing.Tests;

/// <summary>Bad input gets a typed, clear error and writes nothing (except the billing error a refusal calls for).</summary>
[Collection(ClusterCollection.Name)]
public sealed class BadInputTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task Token_counts_whose_cost_overflows_are_invalid_and_charge_nothing()
    {
        var model = await NewModel(999_999_999.123456789012m, 999_999_999.123456789012m);
        var user = await NewUser();

        var result = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, long.MaxValue, long.MaxValue));

        Assert.Equal(BillingStatus.InvalidInput, result.Problem!.Status);
        Assert.Equal(10.0000m, (await View(AccountKind.User, user)).Balance);
    }

    [Fact]
    public async Task Nil_ids_are_invalid()
    {
        var model = await NewModel();
        var user = await NewUser();
        var project = await NewProject();

        var results = new[]
        {
            await Usage.RecordAiUsage(new AiUsage(Guid.Empty, project, user, model, 1, 1)),
            await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), Guid.Empty, user, model, 1, 1)),
            await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, Guid.Empty, model, 1, 1)),
            await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, Guid.Empty, 1, 1)),
            await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), Guid.Empty, model, 1, 1)),
        };

        Assert.All(results, r => Assert.Equal(BillingStatus.InvalidInput, r.Problem!.Status));
        Assert.Equal(BillingStatus.InvalidInput, (await Grains.GetGrain<IProjectGrain>(Guid.NewGuid()).Initialize(Guid.Empty)).Problem!.Status);
        Assert.Equal(20.0000m, (await View(AccountKind.Project, project)).Balance);
    }

    [Fact]
    public async Task Unknown_accounts_are_not_found_and_nothing_is_created()
    {
        var model = await NewModel();
        var unknownUser = Guid.NewGuid();

        var personal = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), unknownUser, model, 1, 1));
        var account = await Grains.GetGrain<IUserGrain>(unknownUser).GetAccount();
        var topUp = await Grains.GetGrain<IUserGrain>(unknownUser).Credit(new AccountCredit(5m, HistoryReasons.TopUp, null));
        var check = await Usage.CheckBalance(new BalanceCheck(null, unknownUser, model, 1, 1));

        Assert.All(new[] { personal.Problem, account.Problem, topUp.Problem, check.Problem }, p => Assert.Equal(BillingStatus.AccountNotFound, p!.Status));
        Assert.Equal(0, await Scalar("SELECT count(*) FROM user_billing WHERE \"user\" = $1", unknownUser));
    }

    [Fact]
    public async Task A_model_without_a_price_cannot_be_used()
    {
        var user = await NewUser();

        var result = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, Guid.NewGuid(), 1, 1));

        Assert.Equal(BillingStatus.NoPriceInEffect, result.Problem!.Status);
        Assert.Equal(0, await BillingErrorCount(user));
    }

    [Theory]
    [InlineData(0, 0, "USD")]
    [InlineData(-1, 5, "USD")]
    [InlineData(5, -0.01, "USD")]
    [InlineData(3, 15, "usd")]
    [InlineData(3, 15, "DOLLARS")]
    public async Task Bad_prices_are_refused_and_not_stored(double input, double output, string currency)
    {
        var model = Guid.NewGuid();

        var result = await Grains.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput((decimal)input, (decimal)output, currency, null));

        Assert.Equal(BillingStatus.InvalidInput, result.Problem!.Status);
        Assert.Equal(0, await Scalar("SELECT count(*) FROM model_pricing WHERE model_version_id = $1", model));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public async Task Non_positive_top_ups_are_refused(int amount)
    {
        var user = await NewUser();

        var result = await Grains.GetGrain<IUserGrain>(user).Credit(new AccountCredit(amount, HistoryReasons.TopUp, null));

        Assert.Equal(BillingStatus.InvalidInput, result.Problem!.Status);
        Assert.Single(await History(AccountKind.User, user));
    }

    [Fact]
    public async Task Unknown_credit_reasons_and_bad_plans_and_page_sizes_are_invalid()
    {
        var user = Grains.GetGrain<IUserGrain>(await NewUser());

        Assert.Equal(BillingStatus.InvalidInput, (await user.Credit(new AccountCredit(5m, "signup_credit", null))).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await user.ChangePlan(new PlanChange(true, -1m))).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await user.GetHistory(new HistoryQuery(0, null))).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await user.GetHistory(new HistoryQuery(501, null))).Problem!.Status);
    }
}
