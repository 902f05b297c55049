namespace Billing.Tests;

/// <summary>Monthly quota of pro accounts: drawn before the balance, reset lazily when a cycle ends.</summary>
[Collection(ClockClusterCollection.Name)]
public sealed class QuotaTests(ClockClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task Non_pro_accounts_ignore_the_quota()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();

        var paid = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 2, 0));

        Assert.Equal((0m, 8m), (paid.Value!.QuotaUsed, paid.Value.BalanceAfter));
    }

    [Fact]
    public async Task Pro_usage_draws_the_quota_first_then_the_balance_within_one_account()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var project = await NewProject(balance: 10m);
        var user = await NewUser(balance: 0m);
        var plan = await Grains.GetGrain<IProjectGrain>(project).ChangePlan(new PlanChange(true, 5m));

        var fromQuota = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 3, 0));
        var shared = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 4, 0)); // 2 quota + 2 balance
        var tooMuch = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 9, 0)); // 0 quota + 8 balance left

        Assert.True(plan.Value!.IsPro);
        Assert.NotNull(plan.Value.CycleEnd);
        Assert.Equal((3m, 10m), (fromQuota.Value!.QuotaUsed, fromQuota.Value.BalanceAfter));
        Assert.Equal((2m, 8m), (shared.Value!.QuotaUsed, shared.Value.BalanceAfter));
        Assert.Equal(BillingStatus.InsufficientBalance, tooMuch.Problem!.Status);
        var account = await View(AccountKind.Project, project);
        Assert.Equal((5m, 8m), (account.MonthUsed, account.Balance));
    }

    [Fact]
    public async Task ReviewDefect_The_same_plan_again_changes_nothing_and_gives_no_second_quota()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 0m);
        var grain = Grains.GetGrain<IUserGrain>(user);
        var first = (await grain.ChangePlan(new PlanChange(true, 5m))).Value!;
        Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 5, 0))).IsOk); // the quota, all of it

        // An admin's retried PUT, or a periodic sync: the same plan.
        var again = await grain.ChangePlan(new PlanChange(true, 5.00m));

        Assert.True(again.IsOk, again.Problem?.Detail);
        Assert.Equal((5m, first.CycleStart, first.CycleEnd), (again.Value!.MonthUsed, again.Value.CycleStart, again.Value.CycleEnd));
        Assert.Equal(BillingStatus.InsufficientBalance,
            (await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1, 0))).Problem?.Status);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM user_billing_history WHERE \"user\" = $1 AND reason = 'plan_change'", user));

        // Another quota is another plan: a new cycle, as before.
        var changed = (await grain.ChangePlan(new PlanChange(true, 7m))).Value!;
        Assert.Equal((0m, 7m), (changed.MonthUsed, changed.MonthlyQuota));
    }

    [Fact]
    public async Task An_ended_cycle_resets_month_used_lazily_with_a_quota_cycle_reset_row()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var grain = Grains.GetGrain<IUserGrain>(user);
        var plan = (await grain.ChangePlan(new PlanChange(true, 4m))).Value!;
        await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 4, 0));

        Fixture.Clock.Advance(TimeSpan.FromDays(65)); // two whole cycles and some
        var afterReset = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1, 0));

        Assert.Equal((1m, 10m), (afterReset.Value!.QuotaUsed, afterReset.Value.BalanceAfter));
        var history = await History(AccountKind.User, user);
        var reset = history[1];
        Assert.Equal((HistoryReasons.QuotaCycleReset, 0m, -4m, 0m), (reset.Reason, reset.Amount, reset.QuotaUsed, reset.MonthUsedAfter));
        var account = await View(AccountKind.User, user);
        Assert.Equal(plan.CycleStart!.Value.AddMonths(2), account.CycleStart);
        Assert.Equal(plan.CycleStart.Value.AddMonths(3), account.CycleEnd);
        Assert.Equal(1m, account.MonthUsed);
    }

    [Fact]
    public async Task Balance_check_counts_what_is_left_of_the_quota()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        await Grains.GetGrain<IUserGrain>(user).ChangePlan(new PlanChange(true, 5m));

        var check = await Usage.CheckBalance(new BalanceCheck(null, user, model, 15, 0));

        Assert.Equal((true, 15.0000m), (check.Value!.Sufficient, check.Value.UserAvailable));
    }
}
