namespace Billing.Tests;

[Collection(ClusterCollection.Name)]
public sealed class MoneyRulesTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task The_json_of_the_seeds_rows_keeps_the_seeds_keys_for_readers_of_its_schema()
    {
        var model = await NewModel(1_000_000m, 0.0001m); // 1 input token = 1.0000
        var user = await NewUser(); // 10
        var project = await NewProject(balance: 2m);

        var fallback = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 3, 0));    // the user pays
        var refused = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 50, 0));    // nobody can
        var personal = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 50, 0));

        Assert.Equal(PayingAccount.User, fallback.Value!.DeductedFrom);
        await using var connection = Fixture.OpenDatabase();
        async Task<System.Text.Json.JsonElement> Json(string sql, Guid key)
        {
            await using var command = new Npgsql.NpgsqlCommand(sql, connection);
            command.Parameters.Add(new Npgsql.NpgsqlParameter { Value = key });
            return System.Text.Json.JsonDocument.Parse((string)(await command.ExecuteScalarAsync())!).RootElement.Clone();
        }

        var marker = await Json("SELECT extra::text FROM project_billing_history WHERE usage_id = $1", fallback.Value.UsageId);
        Assert.Equal((model, 3L, 0L, "user", user), (marker.GetProperty("model_id").GetGuid(), marker.GetProperty("input_tokens").GetInt64(),
            marker.GetProperty("output_tokens").GetInt64(), marker.GetProperty("deducted_from").GetString(), marker.GetProperty("user_id").GetGuid()));
        foreach (var (id, scope) in new[] { (refused.Problem!.BillingErrorId!.Value, (string?)null), (personal.Problem!.BillingErrorId!.Value, "personal") })
        {
            var details = await Json("SELECT details::text FROM billing_error WHERE id = $1", id);
            Assert.Equal((user, model, 50L, 0L, 50m, "USD"), (details.GetProperty("user_id").GetGuid(), details.GetProperty("model_id").GetGuid(),
                details.GetProperty("input_tokens").GetInt64(), details.GetProperty("output_tokens").GetInt64(), details.GetProperty("cost").GetDecimal(),
                details.GetProperty("currency").GetString()));
            Assert.Equal(scope, details.TryGetProperty("scope", out var s) ? s.GetString() : null);
        }
    }

    [Fact]
    public async Task User_signup_credits_10_once_with_a_signup_credit_row()
    {
        var user = await NewUser();
        var again = await Grains.GetGrain<IUserGrain>(user).Initialize();

        Assert.False(again.Value!.Created);
        Assert.Equal(10.0000m, again.Value.Account.Balance);
        var row = Assert.Single(await History(AccountKind.User, user));
        Assert.Equal((HistoryReasons.SignupCredit, 10.0000m, 10.0000m), (row.Reason, row.Amount, row.BalanceAfter));
    }

    [Fact]
    public async Task First_project_of_a_creator_gets_20_and_later_ones_0()
    {
        var creator = Guid.NewGuid();
        var first = await NewProject(creator);
        var second = await NewProject(creator);

        var firstAccount = await View(AccountKind.Project, first);
        Assert.Equal((20.0000m, true, (Guid?)creator), (firstAccount.Balance, firstAccount.InitialCreditGranted, firstAccount.CreatorId));
        var credit = Assert.Single(await History(AccountKind.Project, first));
        Assert.Equal((HistoryReasons.FirstProjectCredit, 20.0000m), (credit.Reason, credit.Amount));
        var secondAccount = await View(AccountKind.Project, second);
        Assert.Equal((0m, false), (secondAccount.Balance, secondAccount.InitialCreditGranted));
        Assert.Empty(await History(AccountKind.Project, second));
    }

    [Fact]
    public async Task Reinitialising_a_project_returns_it_unchanged_and_another_creator_conflicts()
    {
        var creator = Guid.NewGuid();
        var project = await NewProject(creator);
        var again = await Grains.GetGrain<IProjectGrain>(project).Initialize(creator);
        var other = await Grains.GetGrain<IProjectGrain>(project).Initialize(Guid.NewGuid());

        Assert.False(again.Value!.Created);
        Assert.Equal(20.0000m, again.Value.Account.Balance);
        Assert.Equal(BillingStatus.CreatorConflict, other.Problem!.Status);
    }

    [Fact]
    public async Task Cost_is_exact_decimal_per_million_tokens()
    {
        var model = await NewModel(3.00m, 15.00m);
        var user = await NewUser();
        var project = await NewProject();

        var result = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1_234, 567));

        Assert.True(result.IsOk, result.Problem?.Detail);
        Assert.Equal(0.012207m, result.Value!.Cost);
        Assert.Equal(19.987793m, result.Value.BalanceAfter);
        Assert.Equal(PayingAccount.Project, result.Value.DeductedFrom);
        Assert.Equal(19.987793m, (await View(AccountKind.Project, project)).Balance);
        var row = (await History(AccountKind.Project, project))[0];
        Assert.Equal((HistoryReasons.AiUsage, -0.012207m, (long?)1_234, (long?)567, (Guid?)model), (row.Reason, row.Amount, row.InputTokens, row.OutputTokens, row.ModelId));
    }

    [Fact]
    public async Task Project_pays_first_then_the_user_pays_the_whole_cost_never_split()
    {
        var model = await NewModel(1_000_000m, 0.0001m); // 1 input token costs exactly 1
        var user = await NewUser();
        var project = await NewProject(balance: 3m);

        var byProject = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 2, 0));
        var byUser = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 2, 0));

        Assert.Equal((PayingAccount.Project, 1m), (byProject.Value!.DeductedFrom, byProject.Value.BalanceAfter));
        Assert.Equal((PayingAccount.User, 8m), (byUser.Value!.DeductedFrom, byUser.Value.BalanceAfter));
        Assert.Equal(1m, (await View(AccountKind.Project, project)).Balance); // the project's 1 was not touched
        var marker = (await History(AccountKind.Project, project))[0];
        Assert.Equal((HistoryReasons.AiUsageUserFallback, 0m, byUser.Value.UsageId), (marker.Reason, marker.Amount, marker.UsageId!.Value));
        var charge = (await History(AccountKind.User, user))[0];
        Assert.Equal((HistoryReasons.AiUsageUserFallback, -2m, (Guid?)project), (charge.Reason, charge.Amount, charge.ProjectId));
    }

    [Fact]
    public async Task Neither_account_can_pay_stores_one_project_billing_error_and_charges_nothing()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 4m);
        var project = await NewProject(balance: 5m);

        var refused = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 6, 0));

        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        Assert.NotNull(refused.Problem.BillingErrorId);
        Assert.Equal(5m, (await View(AccountKind.Project, project)).Balance);
        Assert.Equal(4m, (await View(AccountKind.User, user)).Balance);
        var errors = await Grains.GetGrain<IBillingErrorsGrain>(0).List(new BillingErrorQuery(BillingScopes.Project, project, false, 50, null));
        var error = Assert.Single(errors.Value!.Items);
        Assert.Equal((refused.Problem.BillingErrorId!.Value, BillingErrorTypes.InsufficientBalance), (error.Id, error.ErrorType));
        Assert.Contains(user.ToString(), error.Details);
    }

    [Fact]
    public async Task Personal_usage_is_paid_by_the_user_only_and_a_refusal_is_a_user_billing_error()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();

        var paid = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 7, 0));
        var refused = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 4, 0));

        Assert.Equal((PayingAccount.User, 3m), (paid.Value!.DeductedFrom, paid.Value.BalanceAfter));
        Assert.Equal(HistoryReasons.AiUsagePersonal, (await History(AccountKind.User, user))[0].Reason);
        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        var errors = await Grains.GetGrain<IBillingErrorsGrain>(0).List(new BillingErrorQuery(BillingScopes.User, user, null, 50, null));
        Assert.Equal(refused.Problem.BillingErrorId, Assert.Single(errors.Value!.Items).Id);
    }

    [Fact]
    public async Task History_is_newest_first_and_pages_with_a_cursor()
    {
        var model = await NewModel();
        var user = await NewUser();
        for (var i = 0; i < 5; i++) await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1_000, 0));

        var first = await Grains.GetGrain<IUserGrain>(user).GetHistory(new HistoryQuery(4, null));
        var second = await Grains.GetGrain<IUserGrain>(user).GetHistory(new HistoryQuery(4, first.Value!.NextBefore));

        Assert.Equal([6L, 5, 4, 3], first.Value.Items.Select(i => i.Sequence));
        Assert.Equal([2L, 1], second.Value!.Items.Select(i => i.Sequence));
        Assert.Null(second.Value.NextBefore);
    }

    [Fact]
    public async Task Billing_errors_resolve_and_an_unknown_one_is_not_found()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var refused = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 11, 0));

        var resolved = await Grains.GetGrain<IBillingErrorsGrain>(0).Resolve(refused.Problem!.BillingErrorId!.Value);
        var unknown = await Grains.GetGrain<IBillingErrorsGrain>(0).Resolve(Guid.NewGuid());
        var open = await Grains.GetGrain<IBillingErrorsGrain>(0).List(new BillingErrorQuery(BillingScopes.User, user, false, 50, null));

        Assert.True(resolved.Value!.Resolved);
        Assert.NotNull(resolved.Value.ResolvedAt);
        Assert.Equal(BillingStatus.BillingErrorNotFound, unknown.Problem!.Status);
        Assert.Empty(open.Value!.Items);
    }

    [Fact]
    public async Task Prices_take_effect_at_their_date_and_earlier_ones_stay()
    {
        var model = Guid.NewGuid();
        var pricing = Grains.GetGrain<IModelPricingGrain>(model);
        await pricing.AddPrice(new ModelPriceInput(1m, 2m, "USD", DateTimeOffset.UtcNow.AddDays(-2)));
        await pricing.AddPrice(new ModelPriceInput(3m, 4m, "USD", DateTimeOffset.UtcNow.AddDays(-1)));
        await pricing.AddPrice(new ModelPriceInput(5m, 6m, "USD", DateTimeOffset.UtcNow.AddDays(1)));

        var view = await pricing.GetPricing();
        var user = await NewUser();
        var paid = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1_000_000, 1_000_000));

        Assert.Equal((3m, 4m), (view.Current!.InputPricePerMillion, view.Current.OutputPricePerMillion));
        Assert.Equal(5m, Assert.Single(view.Scheduled).InputPricePerMillion);
        Assert.Equal(7m, paid.Value!.Cost);
        Assert.Equal(3, await Scalar("SELECT count(*) FROM model_pricing WHERE model_version_id = $1", model));
    }

    [Fact]
    public async Task Top_up_is_idempotent_by_credit_id_and_resolves_open_insufficient_balance_errors()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var refused = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 11, 0));
        var creditId = Guid.NewGuid();

        var first = await Grains.GetGrain<IUserGrain>(user).Credit(new AccountCredit(5.00m, HistoryReasons.TopUp, creditId));
        var again = await Grains.GetGrain<IUserGrain>(user).Credit(new AccountCredit(5.00m, HistoryReasons.TopUp, creditId));

        Assert.Equal(15.0000m, first.Value!.Balance);
        Assert.Equal(15.0000m, again.Value!.Balance);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM user_billing_history WHERE credit_id = $1", creditId));
        var error = await Grains.GetGrain<IBillingErrorsGrain>(0).List(new BillingErrorQuery(BillingScopes.User, user, null, 50, null));
        Assert.True(Assert.Single(error.Value!.Items).Resolved);
        Assert.Equal(refused.Problem!.BillingErrorId, error.Value.Items[0].Id);
    }

    [Fact]
    public async Task Balance_check_reports_what_each_account_could_pay()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var project = await NewProject(balance: 3m);

        var both = await Usage.CheckBalance(new BalanceCheck(project, user, model, 3, 0));
        var userOnly = await Usage.CheckBalance(new BalanceCheck(null, user, model, 11, 0));

        Assert.Equal(new BalanceCheckResult(true, 3m, "USD", 3m, 10.0000m), both.Value);
        Assert.Equal(new BalanceCheckResult(false, 11m, "USD", null, 10.0000m), userOnly.Value);
    }
}
