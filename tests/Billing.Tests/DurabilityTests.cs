using Billing.Accounts;
using Billing.Storage;
using Npgsql;

namespace Billing.Tests;

[Collection(ClusterCollection.Name)]
public sealed class DurabilityTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task A_stale_second_activation_cannot_write_and_the_live_one_reloads()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var project = await NewProject(balance: 10m);
        var store = new LedgerStore(NpgsqlDataSource.Create(Fixture.ConnectionString));
        var stale = (await store.LoadAsync(AccountTable.Projects, project))!;

        // The grain moves on; the "other activation" still holds the old version.
        await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 4, 0));
        var (row, _) = AccountLedger.Charge(stale, new AccountCharge(Guid.NewGuid(), HistoryReasons.AiUsage, 10m, "USD", model, 10, 0, user), DateTimeOffset.UtcNow);
        var written = await store.CommitAsync(LedgerCommit.Of(stale, [row!], []));

        Assert.False(written);
        Assert.Equal(6m, (await store.LoadAsync(AccountTable.Projects, project))!.Balance);

        // Now a second activation does write first (a top-up behind the grain's back): the grain's next write
        // conflicts, it reloads, and decides against the real balance.
        var current = (await store.LoadAsync(AccountTable.Projects, project))!;
        var credit = AccountLedger.Credit(current, new AccountCredit(100m, HistoryReasons.TopUp, Guid.NewGuid()), DateTimeOffset.UtcNow).Row!;
        Assert.True(await store.CommitAsync(new LedgerCommit(AccountLedger.Apply(current, credit), current.Version, [credit], [], false)));
        var afterConflict = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 50, 0));

        Assert.Equal((PayingAccount.Project, 56m), (afterConflict.Value!.DeductedFrom, afterConflict.Value.BalanceAfter));
    }

    [Fact]
    public async Task A_refusal_is_decided_again_when_another_activation_topped_the_account_up_behind_the_grains_back()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var project = await NewProject(balance: 10m);
        await using var store = new LedgerStore(NpgsqlDataSource.Create(Fixture.ConnectionString));
        await Grains.GetGrain<IProjectGrain>(project).GetAccount(); // the grain holds the account at 10

        // Another activation tops it up to 110. A refusal writes nothing, so no version guard would catch the grain's
        // stale 10: the account reads its stored version before refusing, reloads, and charges.
        var current = (await store.LoadAsync(AccountTable.Projects, project))!;
        var credit = AccountLedger.Credit(current, new AccountCredit(100m, HistoryReasons.TopUp, Guid.NewGuid()), DateTimeOffset.UtcNow).Row!;
        Assert.True(await store.CommitAsync(new LedgerCommit(AccountLedger.Apply(current, credit), current.Version, [credit], [], false)));
        var usage = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 50, 0));

        Assert.True(usage.IsOk, usage.Problem?.Detail);
        Assert.Equal((PayingAccount.Project, 60m), (usage.Value!.DeductedFrom, usage.Value.BalanceAfter));
    }

    [Fact]
    public async Task ReviewDefect_A_refusal_is_decided_again_when_another_activation_voided_a_hold_behind_the_grains_back()
    {
        var model = await NewModel(1_000_000m, 0m); // 1.00 per input token
        var user = await NewUser();
        var project = await NewProject(balance: 10m);
        var placed = await Usage.PlaceHold(new HoldRequest(Guid.NewGuid(), project, user, model, 8, 0));
        Assert.True(placed.IsOk, placed.Problem?.Detail);
        Assert.Equal(2m, (await Grains.GetGrain<IProjectGrain>(project).GetAccount()).Value!.Available); // the grain holds 8 of 10

        // Another activation voids the hold, as its commit writes a void: the hold's status and holds_seq, no history
        // row, so the version stays. Only holds_seq tells the grain its 8 are free again.
        await using (var connection = Fixture.OpenDatabase())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            foreach (var (sql, key) in new[]
            {
                ("UPDATE billing_hold SET status = 'voided', ended_at = now() WHERE hold_id = $1", placed.Value!.HoldId),
                ("UPDATE project_billing SET holds_seq = holds_seq + 1 WHERE project = $1", project),
            })
            {
                await using var command = new NpgsqlCommand(sql, connection, transaction);
                command.Parameters.Add(new NpgsqlParameter { Value = key });
                Assert.Equal(1, await command.ExecuteNonQueryAsync());
            }

            await transaction.CommitAsync();
        }

        // A usage of 5: the grain's stale holds leave 2, so it would refuse and send it to the user.
        var usage = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 5, 0));

        Assert.True(usage.IsOk, usage.Problem?.Detail);
        Assert.Equal((PayingAccount.Project, 5m), (usage.Value!.DeductedFrom, usage.Value.BalanceAfter));
        Assert.Equal(10m, (await View(AccountKind.User, user)).Balance);
    }

    [Fact]
    public async Task ReviewDefect_A_retried_usage_charged_before_answers_its_receipt_not_the_404_of_a_user_without_an_account()
    {
        var model = await NewModel(100_000m, 0.0001m); // 1 input token = 0.1000
        var project = await NewProject(balance: 1m);
        var neverInitialised = Guid.NewGuid(); // a project usage never needs the user's own account
        var usage = new AiUsage(Guid.NewGuid(), project, neverInitialised, model, 9, 0); // 0.9000
        var first = await Usage.RecordAiUsage(usage);
        Assert.True(first.IsOk, first.Problem?.Detail);

        // The answer was lost with its silo; the account's new activation no longer remembers the receipt, and the
        // project's 0.1000 left cannot pay it again, so the retry goes on to the user, who has no account.
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
        var retried = await Usage.RecordAiUsage(usage);

        Assert.True(retried.IsOk, retried.Problem?.Detail);
        Assert.Equal(first.Value, retried.Value);
        Assert.Equal(0.1m, (await View(AccountKind.Project, project)).Balance);
    }

    [Fact]
    public async Task ReviewDefect_A_retried_project_usage_that_both_accounts_now_refuse_finishes_the_projects_fallback_row()
    {
        var model = await NewModel(1_000_000m, 0m); // 1 per input token
        var project = await NewProject(balance: 0m);
        var user = await NewUser(); // 10
        var usageId = Guid.NewGuid();
        // The first call: the user paid 6 for the project, and the call was lost before the project's zero-amount row.
        var paid = await Grains.GetGrain<ITestChargerGrain>(0).Charge(AccountKind.User, user,
            new AccountCharge(usageId, HistoryReasons.AiUsageUserFallback, 6m, "USD", model, 6, 0, project));
        Assert.True(paid.IsOk, paid.Problem?.Detail);

        // The retry: the user's new activation no longer remembers the receipt, and its 4 left cannot pay again.
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IUserGrain>(user));
        var retried = await Usage.RecordAiUsage(new AiUsage(usageId, project, user, model, 6, 0));

        Assert.True(retried.IsOk, retried.Problem?.Detail);
        Assert.Equal((PayingAccount.User, 4m), (retried.Value!.DeductedFrom, retried.Value.BalanceAfter));
        var marker = Assert.Single(await History(AccountKind.Project, project), r => r.UsageId == usageId);
        Assert.Equal((HistoryReasons.AiUsageUserFallback, 0m), (marker.Reason, marker.Amount));
        Assert.Equal(0, await BillingErrorCount(project));
    }

    [Fact]
    public async Task ReviewDefect_A_retried_personal_usage_charged_before_answers_its_receipt_not_a_422_after_the_price_changed_currency()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(); // 10
        var usage = new PersonalUsage(Guid.NewGuid(), user, model, 2, 0);
        var first = await Usage.RecordPersonalUsage(usage);
        Assert.True(first.IsOk, first.Problem?.Detail);

        // In between, the model got a price in another currency; the retry is priced in it.
        var repriced = await Grains.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput(1_000_000m, 0.0001m, "EUR", DateTimeOffset.UtcNow.AddSeconds(-30)));
        Assert.True(repriced.IsOk, repriced.Problem?.Detail);
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IUserGrain>(user));
        var retried = await Usage.RecordPersonalUsage(usage);

        Assert.True(retried.IsOk, retried.Problem?.Detail);
        Assert.Equal(first.Value, retried.Value);
        Assert.Equal(8m, (await View(AccountKind.User, user)).Balance);
        Assert.Equal(BillingStatus.CurrencyMismatch, (await Usage.RecordPersonalUsage(usage with { UsageId = Guid.NewGuid() })).Problem?.Status);
    }
}

/// <summary>
/// The restart of the test cluster's one silo, on a cluster of its own: the shared cluster's clock is moved by hours and
/// days by other tests, and a silo restarted there could miss its gateway for minutes (twice in full runs), leaving
/// every later test of the collection without a cluster.
/// </summary>
[Collection(SiloRestartCollection.Name)]
public sealed class SiloRestartTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task Balance_reloads_from_the_database_after_deactivation_and_a_silo_restart()
    {
        var model = await NewModel();
        var user = await NewUser();
        var project = await NewProject();
        await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1_234, 567));

        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
        var silo = Fixture.Cluster.GetActiveSilos().First();
        await Fixture.Cluster.RestartSiloAsync(silo);
        await Fixture.Cluster.InitializeClientAsync();

        var account = await View(AccountKind.Project, project);
        Assert.Equal(19.987793m, account.Balance);
        Assert.Equal(2, account.Version);
    }
}
