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
}
