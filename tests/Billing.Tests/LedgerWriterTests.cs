using Billing.Accounts;
using Billing.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Billing.Tests;

/// <summary>The silo's shared writer: many accounts per transaction, each statement still on its own.</summary>
[Collection(ClusterCollection.Name)]
public sealed class LedgerWriterTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task A_failing_statement_fails_alone_and_a_stale_version_is_refused_while_the_others_commit()
    {
        var dataSource = NpgsqlDataSource.Create(Fixture.ConnectionString);
        var store = new LedgerStore(dataSource);
        await using var writer = new LedgerWriter(dataSource, NullLogger<LedgerWriter>.Instance);
        var model = Guid.NewGuid();
        var projects = new Guid[120];
        for (var i = 0; i < projects.Length; i++) projects[i] = await NewProject(balance: 5m);
        var accounts = await Task.WhenAll(projects.Select(p => store.LoadAsync(AccountTable.Projects, p)));
        var takenUsageId = Guid.NewGuid();
        var now = DateTimeOffset.UtcNow;

        Task<bool> Charge(AccountState account, Guid usageId, long expectedVersion)
        {
            var (row, _) = AccountLedger.Charge(account, new AccountCharge(usageId, HistoryReasons.AiUsage, 1m, "USD", model, 1, 0, null), now);
            var receipt = new UsageReceipt(usageId, 1m, "USD", 1, 0, PayingAccount.Project, account.Id, row!.BalanceAfter, 0m);
            return writer.CommitAsync(new LedgerCommit(AccountLedger.Apply(account, row), expectedVersion, [row], [receipt], false));
        }

        Assert.True(await Charge(accounts[0]!, takenUsageId, accounts[0]!.Version));
        // Every other account writes at once; two of them are wrong: a usage id already stored, a stale version.
        var writes = accounts.Skip(1).Select((a, i) => i switch
        {
            7 => Charge(a!, takenUsageId, a!.Version),
            42 => Charge(a!, Guid.NewGuid(), a!.Version - 1),
            _ => Charge(a!, Guid.NewGuid(), a!.Version),
        }).ToArray();
        await Task.WhenAll(writes.Select(w => w.ContinueWith(_ => { })));

        var duplicate = await Assert.ThrowsAsync<PostgresException>(() => writes[7]);
        Assert.Equal(PostgresErrorCodes.UniqueViolation, duplicate.SqlState);
        Assert.False(await writes[42]);
        Assert.All(writes.Where((_, i) => i is not 7 and not 42), w => Assert.True(w.Result));
        Assert.Equal(4m, (await store.LoadAsync(AccountTable.Projects, projects[1]))!.Balance);
        Assert.Equal(5m, (await store.LoadAsync(AccountTable.Projects, projects[8]))!.Balance);   // the duplicate wrote nothing
        Assert.Equal(5m, (await store.LoadAsync(AccountTable.Projects, projects[43]))!.Balance);  // nor the stale one

        // The grains of these accounts were bypassed: deactivate them so the ledger check reads the database.
        foreach (var project in projects) await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
    }

    [Fact]
    public async Task One_statement_writes_several_accounts_each_under_its_own_version_guard_and_nothing_of_a_stale_one()
    {
        var dataSource = NpgsqlDataSource.Create(Fixture.ConnectionString);
        var store = new LedgerStore(dataSource);
        var model = Guid.NewGuid();
        var projects = new[] { await NewProject(balance: 5m), await NewProject(balance: 5m), await NewProject(balance: 5m) };
        foreach (var project in projects) await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
        var accounts = await Task.WhenAll(projects.Select(p => store.LoadAsync(AccountTable.Projects, p)));
        var now = DateTimeOffset.UtcNow;
        var usageIds = projects.Select(_ => Guid.NewGuid()).ToArray();

        LedgerCommit Charge(int i, long expectedVersion)
        {
            var account = accounts[i]!;
            var (row, _) = AccountLedger.Charge(account, new AccountCharge(usageIds[i], HistoryReasons.AiUsage, 1m, "USD", model, 1, 0, null), now);
            var receipt = new UsageReceipt(usageIds[i], 1m, "USD", 1, 0, PayingAccount.Project, account.Id, row!.BalanceAfter, 0m);
            return new LedgerCommit(AccountLedger.Apply(account, row), expectedVersion, [row], [receipt], false);
        }

        // The middle account is stale: another writer moved it since it was read.
        var group = new LedgerCommitGroup([Charge(0, accounts[0]!.Version), Charge(1, accounts[1]!.Version - 1), Charge(2, accounts[2]!.Version)]);
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(LedgerStore.CommitCommand(group));
        var written = new List<Guid>();
        await using (var reader = await batch.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) written.Add(reader.GetGuid(0));
        }

        Assert.Equal(new[] { projects[0], projects[2] }.Order(), written.Order());
        Assert.Equal(4m, (await store.LoadAsync(AccountTable.Projects, projects[0]))!.Balance);
        Assert.Equal(5m, (await store.LoadAsync(AccountTable.Projects, projects[1]))!.Balance);
        Assert.Equal(4m, (await store.LoadAsync(AccountTable.Projects, projects[2]))!.Balance);
        await using var count = dataSource.CreateCommand(
            "SELECT (SELECT count(*) FROM project_billing_history WHERE usage_id = ANY($1)) * 10 + (SELECT count(*) FROM usage_record WHERE usage_id = ANY($1))");
        count.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = usageIds });
        Assert.Equal(22L, (long)(await count.ExecuteScalarAsync())!); // two history rows and two usage records: none of the stale one
    }

    [Fact]
    public async Task Two_commits_of_one_account_queued_together_are_not_merged_into_one_statement()
    {
        var dataSource = NpgsqlDataSource.Create(Fixture.ConnectionString);
        var store = new LedgerStore(dataSource);
        await using var writer = new LedgerWriter(dataSource, NullLogger<LedgerWriter>.Instance);
        var project = await NewProject(balance: 5m);
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
        var account = (await store.LoadAsync(AccountTable.Projects, project))!;
        var now = DateTimeOffset.UtcNow;

        Task<bool> Charge()
        {
            var usageId = Guid.NewGuid();
            var (row, _) = AccountLedger.Charge(account, new AccountCharge(usageId, HistoryReasons.AiUsage, 1m, "USD", Guid.NewGuid(), 1, 0, null), now);
            var receipt = new UsageReceipt(usageId, 1m, "USD", 1, 0, PayingAccount.Project, account.Id, row!.BalanceAfter, 0m);
            return writer.CommitAsync(new LedgerCommit(AccountLedger.Apply(account, row), account.Version, [row], [receipt], false));
        }

        // Two activations' writes of the same version (as after a fail-over): one statement would move the row once
        // and answer both as written. Exactly one may be.
        var results = await Task.WhenAll(Charge(), Charge());
        Assert.Single(results, true);
        Assert.Equal(4m, (await store.LoadAsync(AccountTable.Projects, project))!.Balance);
    }
}
