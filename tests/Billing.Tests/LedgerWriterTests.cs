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
        var commit = CreditOfOne(account);
        var turns = new ManualTurnScheduler();

        var started = Task.Factory.StartNew(
            () => writer.CommitAsync(commit),
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
                var commit = CreditOfOne(account);
                answers.Add(await writer.CommitAsync(commit).WaitAsync(TimeSpan.FromSeconds(60)));
                account = commit.After;
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

    [Fact]
    public async Task A_writer_sends_every_transaction_on_the_one_connection_it_keeps()
    {
        // The pool hands out its idle connections in turn: a writer that took one per transaction spread its
        // statements over all of them (a PostgreSQL backend each, cold, with its own prepared statement).
        var application = $"ledger-writer-{Guid.NewGuid():N}"[..30];
        await using var dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(Fixture.ConnectionString) { ApplicationName = application }.ConnectionString);
        var idle = await Task.WhenAll(Enumerable.Range(0, 6).Select(async _ => await dataSource.OpenConnectionAsync()));
        foreach (var connection in idle) await connection.DisposeAsync();
        Assert.Equal(6, await Scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application));

        await using var writer = new LedgerWriter(dataSource, NullLogger<LedgerWriter>.Instance, Options.Create(new BillingLimits { LedgerWriters = 1 }));
        var project = await NewProject(balance: 0m);
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
        var start = await ServerClock();
        var account = await CreditOneByOne(writer, project, credits: 12);

        Assert.Equal(12m, account.Balance);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state_change > $2", application, start));
    }

    [Fact]
    public async Task A_writer_whose_connection_was_terminated_commits_on_a_new_one()
    {
        var application = $"ledger-writer-{Guid.NewGuid():N}"[..30];
        await using var dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(Fixture.ConnectionString) { ApplicationName = application }.ConnectionString);
        await using var writer = new LedgerWriter(dataSource, NullLogger<LedgerWriter>.Instance, Options.Create(new BillingLimits { LedgerWriters = 1 }));
        var store = new LedgerStore(dataSource);
        var project = await NewProject(balance: 0m);
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
        var account = await CreditOneByOne(writer, project, credits: 1);

        // The server ends the writer's session (a restart, a failover, an administrator) while it waits for work.
        Assert.Equal(1, await Scalar("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t", application));
        for (var i = 0; i < 100 && await Scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application) > 0; i++) await Task.Delay(50);

        // The write that meets the dead session may fail (nothing written, as for any fault); the next one commits.
        var commit = CreditOfOne(account);
        try
        {
            Assert.True(await writer.CommitAsync(commit));
        }
        catch (NpgsqlException)
        {
            Assert.Equal(account.Version, (await store.LoadAsync(AccountTable.Projects, project))!.Version);
            Assert.True(await writer.CommitAsync(commit));
        }

        Assert.Equal(2m, (await CreditOneByOne(writer, project, credits: 0)).Balance);
        Assert.Equal(4m, (await CreditOneByOne(writer, project, credits: 2)).Balance);
    }

    [Fact]
    public async Task A_writer_with_nothing_to_write_gives_its_connection_back_to_the_pool()
    {
        // A pool of one connection: while the writer keeps it nobody else gets one (Timeout = 1 s).
        var settings = new NpgsqlConnectionStringBuilder(Fixture.ConnectionString) { MaxPoolSize = 1, Timeout = 1 };
        await using var dataSource = NpgsqlDataSource.Create(settings.ConnectionString);
        await using var writer = new LedgerWriter(dataSource, NullLogger<LedgerWriter>.Instance, Options.Create(new BillingLimits { LedgerWriters = 1 }));
        var project = await NewProject(balance: 0m);
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
        await CreditOneByOne(writer, project, credits: 3);

        await Task.Delay(WriterConnection.ReleaseAfter + TimeSpan.FromMilliseconds(500));
        await using (var other = await dataSource.OpenConnectionAsync())
        {
            await using var command = new NpgsqlCommand("SELECT 1", other);
            Assert.Equal(1, await command.ExecuteScalarAsync());
        }

        Assert.Equal(5m, (await CreditOneByOne(writer, project, credits: 2)).Balance);
    }

    /// <summary>Commits <paramref name="credits"/> credits of 1 to the stored account, each after the one before; the account after them.</summary>
    private async Task<AccountState> CreditOneByOne(LedgerWriter writer, Guid project, int credits)
    {
        await using var reads = NpgsqlDataSource.Create(Fixture.ConnectionString);
        var store = new LedgerStore(reads);
        var account = (await store.LoadAsync(AccountTable.Projects, project))!;
        for (var i = 0; i < credits; i++)
        {
            var commit = CreditOfOne(account);
            Assert.True(await writer.CommitAsync(commit).WaitAsync(TimeSpan.FromSeconds(30)));
            account = commit.After;
        }

        return (await store.LoadAsync(AccountTable.Projects, project))!;
    }

    /// <summary>A top-up of 1 on <paramref name="account"/>, as the writer is given it: the account after it, under the version before.</summary>
    private static LedgerCommit CreditOfOne(AccountState account)
    {
        var credit = AccountLedger.Credit(account, new AccountCredit(1m, HistoryReasons.TopUp, Guid.NewGuid()), DateTimeOffset.UtcNow).Row!;
        return LedgerCommit.Of(account, [credit], []);
    }

    private async Task<DateTime> ServerClock()
    {
        await using var connection = new NpgsqlConnection(Fixture.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT clock_timestamp()", connection);
        return (DateTime)(await command.ExecuteScalarAsync())!;
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
