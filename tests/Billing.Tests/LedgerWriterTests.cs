using System.Collections.Concurrent;
using Billing.Accounts;
using Billing.Hosting;
using Billing.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
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
            return writer.CommitAsync(LedgerCommit.Of(account, [row], [receipt], expectedVersion));
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
            return LedgerCommit.Of(account, [row], [receipt], expectedVersion);
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
            return writer.CommitAsync(LedgerCommit.Of(account, [row], [receipt]));
        }

        // Two activations' writes of the same version (as after a fail-over): one statement would move the row once
        // and answer both as written. Exactly one may be.
        var results = await Task.WhenAll(Charge(), Charge());
        Assert.Single(results, true);
        Assert.Equal(4m, (await store.LoadAsync(AccountTable.Projects, project))!.Balance);
    }

    [Fact]
    public async Task A_write_started_on_a_grains_scheduler_is_committed_without_that_scheduler_running_again()
    {
        // In a silo the caller is a grain's turn. Nothing of the writer may run on that scheduler: its continuations
        // would wait for turns the grain may not give (a writer that starts its work on the caller's thread, measured
        // and not kept, has to leave the scheduler at every await).
        await using var dataSource = NpgsqlDataSource.Create(Fixture.ConnectionString);
        await using var writer = new LedgerWriter(dataSource, NullLogger<LedgerWriter>.Instance);
        var store = new LedgerStore(dataSource);
        var project = await NewProject(balance: 5m);
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
        var account = (await store.LoadAsync(AccountTable.Projects, project))!;
        var credit = AccountLedger.Credit(account, new AccountCredit(1m, HistoryReasons.TopUp, Guid.NewGuid()), DateTimeOffset.UtcNow).Row!;
        var turns = new ManualTurnScheduler();

        var started = Task.Factory.StartNew(
            () => writer.CommitAsync(new LedgerCommit(AccountLedger.Apply(account, credit), account.Version, [credit], [], false)),
            CancellationToken.None, TaskCreationOptions.None, turns);
        Assert.Equal(1, turns.RunQueued()); // the grain's one turn: it queues the write
        var committed = await started;
        try
        {
            Assert.True(await committed.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal(0, turns.Queued); // nothing of the writer was queued to the grain's scheduler
            Assert.Equal(6m, (await store.LoadAsync(AccountTable.Projects, project))!.Balance);
        }
        finally
        {
            // On a failure, give the writer the turns it waits for, so that disposing it does not wait for ever.
            for (var i = 0; i < 200 && !committed.IsCompleted; i++)
            {
                turns.RunQueued();
                await Task.Delay(50);
            }
        }
    }

    [Fact]
    public async Task Writes_queued_from_many_threads_one_at_a_time_per_account_are_each_committed_once()
    {
        // Each account writes one commit at a time, as its grain does, so the partition's queue empties and fills
        // again all the time; a write queued just as the writer finds its queue empty must still be committed.
        await using var dataSource = NpgsqlDataSource.Create(Fixture.ConnectionString);
        await using var writer = new LedgerWriter(dataSource, NullLogger<LedgerWriter>.Instance, Options.Create(new BillingLimits { LedgerWriters = 1 }));
        var store = new LedgerStore(dataSource);
        var projects = new Guid[24];
        for (var i = 0; i < projects.Length; i++) projects[i] = await NewProject(balance: 0m);
        foreach (var project in projects) await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
        const int creditsPerAccount = 20;
        var answers = new ConcurrentBag<bool>();
        var before = await Task.WhenAll(projects.Select(p => store.LoadAsync(AccountTable.Projects, p)));

        await Task.WhenAll(projects.Select(project => Task.Run(async () =>
        {
            var account = (await store.LoadAsync(AccountTable.Projects, project))!;
            for (var i = 0; i < creditsPerAccount; i++)
            {
                var credit = AccountLedger.Credit(account, new AccountCredit(1m, HistoryReasons.TopUp, Guid.NewGuid()), DateTimeOffset.UtcNow).Row!;
                var next = AccountLedger.Apply(account, credit);
                answers.Add(await writer.CommitAsync(new LedgerCommit(next, account.Version, [credit], [], false)).WaitAsync(TimeSpan.FromSeconds(60)));
                account = next;
            }
        })));

        Assert.Equal(projects.Length * creditsPerAccount, answers.Count(a => a));
        for (var i = 0; i < projects.Length; i++)
        {
            var stored = (await store.LoadAsync(AccountTable.Projects, projects[i]))!;
            Assert.Equal(before[i]!.Balance + creditsPerAccount, stored.Balance);
            Assert.Equal(before[i]!.Version + creditsPerAccount, stored.Version);
        }
    }

    /// <summary>A scheduler that runs its tasks only when told, one turn at a time, as a grain's does.</summary>
    private sealed class ManualTurnScheduler : TaskScheduler
    {
        private readonly ConcurrentQueue<Task> tasks = new();

        public int Queued => tasks.Count;

        public int RunQueued()
        {
            var ran = 0;
            while (tasks.TryDequeue(out var task))
            {
                TryExecuteTask(task);
                ran++;
            }

            return ran;
        }

        protected override void QueueTask(Task task) => tasks.Enqueue(task);

        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;

        protected override IEnumerable<Task> GetScheduledTasks() => tasks.ToArray();
    }
}
