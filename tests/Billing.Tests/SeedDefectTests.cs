namespace Billing.Tests;

/// <summary>One test per defect of the seed service listed in DESIGN.md, named after it.</summary>
[Collection(ClusterCollection.Name)]
public sealed class SeedDefectTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task SeedDefect01_CheckBalanceAddedProjectAndUserBalances()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 6m);
        var project = await NewProject(balance: 6m);

        var check = await Usage.CheckBalance(new BalanceCheck(project, user, model, 10, 0)); // 6 + 6 ≥ 10, but no one can pay 10

        Assert.False(check.Value!.Sufficient);
        Assert.Equal((6m, 6m), (check.Value.ProjectAvailable, check.Value.UserAvailable));
    }

    [Fact]
    public async Task SeedDefect02_ConcurrentFirstProjectsBothGotTheCredit()
    {
        var creator = Guid.NewGuid();
        var projects = Enumerable.Range(0, 12).Select(_ => Guid.NewGuid()).ToArray();

        var results = await Task.WhenAll(projects.Select(p => Grains.GetGrain<IProjectGrain>(p).Initialize(creator)));

        foreach (var project in projects) Touch(AccountKind.Project, project);
        Assert.All(results, r => Assert.True(r.IsOk));
        Assert.Single(results, r => r.Value!.Account.InitialCreditGranted);
        Assert.Equal(20.0000m, results.Sum(r => r.Value!.Account.Balance));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM project_billing_history h JOIN project_billing p USING (project) WHERE p.\"user\" = $1 AND h.reason = 'first_project_credit'", creator));
    }

    [Fact]
    public async Task SeedDefect03_CurrencyCameFromAnArbitraryPricingRow()
    {
        var model = Guid.NewGuid();
        var pricing = Grains.GetGrain<IModelPricingGrain>(model);
        await pricing.AddPrice(new ModelPriceInput(1m, 1m, "USD", DateTimeOffset.UtcNow.AddDays(-2)));
        await pricing.AddPrice(new ModelPriceInput(1m, 1m, "EUR", DateTimeOffset.UtcNow.AddDays(-1)));
        var user = await NewUser();

        var result = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1_000, 0));

        // The row that priced the cost (EUR, the newest in effect) decides the currency: refused for a USD account.
        Assert.Equal(BillingStatus.CurrencyMismatch, result.Problem!.Status);
        Assert.Contains("EUR", result.Problem.Detail);
    }

    [Fact]
    public async Task SeedDefect04_FutureEffectiveFromWonOverTheCurrentPrice()
    {
        var model = Guid.NewGuid();
        var pricing = Grains.GetGrain<IModelPricingGrain>(model);
        await pricing.AddPrice(new ModelPriceInput(2m, 0m, "USD", DateTimeOffset.UtcNow.AddDays(-1)));
        await pricing.AddPrice(new ModelPriceInput(100m, 0m, "USD", DateTimeOffset.UtcNow.AddDays(30)));
        var user = await NewUser();

        var result = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1_000_000, 0));

        Assert.Equal(2m, result.Value!.Cost);
    }

    [Fact]
    public async Task SeedDefect05_NegativeTokenCountsMadeCredits()
    {
        var model = await NewModel();
        var user = await NewUser();
        var project = await NewProject();

        var negativeInput = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, -1_000_000, 0));
        var negativeOutput = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 0, -5));

        Assert.Equal(BillingStatus.InvalidInput, negativeInput.Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, negativeOutput.Problem!.Status);
        Assert.Equal(20.0000m, (await View(AccountKind.Project, project)).Balance);
        Assert.Equal(10.0000m, (await View(AccountKind.User, user)).Balance);
        Assert.Equal(0, await Scalar("SELECT count(*) FROM usage_record WHERE account_id = ANY($1)", new[] { user, project }));
    }

    [Fact]
    public async Task SeedDefect06_UserFallbackLeftNoUserHistoryRow()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var project = await NewProject(balance: 0m);

        var paid = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 4, 0));

        Assert.Equal(PayingAccount.User, paid.Value!.DeductedFrom);
        var userRow = (await History(AccountKind.User, user))[0];
        Assert.Equal((-4m, 6m, (Guid?)paid.Value.UsageId), (userRow.Amount, userRow.BalanceAfter, userRow.UsageId));
        var projectRow = (await History(AccountKind.Project, project))[0];
        Assert.Equal((0m, HistoryReasons.AiUsageUserFallback, (Guid?)user), (projectRow.Amount, projectRow.Reason, projectRow.UserId));
        Assert.Contains("\"cost\": 4", projectRow.Details);
    }

    [Fact]
    public async Task SeedDefect07_SignupCreditLeftNoHistoryRow()
    {
        var user = await NewUser();

        var row = Assert.Single(await History(AccountKind.User, user));

        Assert.Equal((HistoryReasons.SignupCredit, 10.0000m), (row.Reason, row.Amount));
    }

    [Fact]
    public async Task SeedDefect08_RetriedCallChargedTwice()
    {
        var model = await NewModel();
        var user = await NewUser();
        var project = await NewProject();
        var usage = new AiUsage(Guid.NewGuid(), project, user, model, 1_234, 567);

        var first = await Usage.RecordAiUsage(usage);
        var retry = await Usage.RecordAiUsage(usage);

        Assert.Equal(first.Value, retry.Value);
        Assert.Equal(19.987793m, (await View(AccountKind.Project, project)).Balance);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM project_billing_history WHERE usage_id = $1", usage.UsageId));
    }

    [Fact]
    public async Task SeedDefect09_PriceInAnotherCurrencyWasDeductedAsIfTheSame()
    {
        var model = await NewModel(3m, 15m, "EUR");
        var user = await NewUser();
        var project = await NewProject();

        var result = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1_000, 1_000));

        Assert.Equal(BillingStatus.CurrencyMismatch, result.Problem!.Status);
        Assert.Equal(20.0000m, (await View(AccountKind.Project, project)).Balance);
        Assert.Equal(10.0000m, (await View(AccountKind.User, user)).Balance);
        Assert.Equal(0, await BillingErrorCount(project));

        // Its balance check says the same (422), instead of "not sufficient", which invited a top-up that cannot help.
        var check = await Usage.CheckBalance(new BalanceCheck(project, user, model, 1_000, 1_000));
        Assert.Equal(BillingStatus.CurrencyMismatch, check.Problem?.Status);
        var personalCheck = await Usage.CheckBalance(new BalanceCheck(null, user, model, 1_000, 1_000));
        Assert.Equal(BillingStatus.CurrencyMismatch, personalCheck.Problem?.Status);
    }

    [Fact]
    public async Task SeedDefect10_CostWasReturnedAsFloatingPoint()
    {
        // 0.1 + 0.2 is not 0.3 in binary floating point; in the ledger it is, exactly.
        var model = await NewModel(0.1m, 0.2m);
        var user = await NewUser();

        var result = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1_000_000, 1_000_000));

        Assert.Equal(0.3m, result.Value!.Cost);
        Assert.Equal(9.7m, result.Value.BalanceAfter);
        Assert.Equal("9.7000", await BalanceText(user));

        // 0.3 survives a trip through double (it rounds back to 15 digits). A cost of 19 significant digits does not:
        // a double anywhere on the path (cost, balance, stored text) would change these digits.
        var precise = await NewModel(1.234567890123m, 0.0001m);
        var exact = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, precise, 1_000_001, 0));
        Assert.True(exact.IsOk, exact.Problem?.Detail);
        Assert.Equal("1.234569124690890123", exact.Value!.Cost.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("8.465430875309109877", exact.Value.BalanceAfter.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("8.465430875309109877", await BalanceText(user));
        Assert.NotEqual(exact.Value.Cost, (decimal)(double)exact.Value.Cost);
    }

    [Fact]
    public async Task SeedDefect11_ProjectExistenceCheckedInASeparateQuery()
    {
        var model = await NewModel();
        var user = await NewUser();
        var neverInitialised = Guid.NewGuid();

        var result = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), neverInitialised, user, model, 1_000, 0));

        Assert.Equal(BillingStatus.AccountNotFound, result.Problem!.Status);
        Assert.Contains(neverInitialised.ToString(), result.Problem.Detail);
        Assert.Equal(10.0000m, (await View(AccountKind.User, user)).Balance);
        Assert.Equal(0, await Scalar("SELECT count(*) FROM project_billing WHERE project = $1", neverInitialised));
    }

    private async Task<string> BalanceText(Guid user)
    {
        await using var connection = Fixture.OpenDatabase();
        await using var command = new Npgsql.NpgsqlCommand("SELECT balance::text FROM user_billing WHERE \"user\" = $1", connection);
        command.Parameters.Add(new Npgsql.NpgsqlParameter { Value = user });
        return (string)(await command.ExecuteScalarAsync())!;
    }
}
