using Billing.Accounts;
using Billing.Storage;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// A commit statement is prepared once per connection and then reused by every commit that runs it. Npgsql reuses a
/// prepared statement only while its parameters' types match; a usage commit (no new grant: empty DateTime arrays) after
/// a top-up (a new grant: UTC DateTime arrays) used to differ in type, and from then on every commit on that connection
/// was parsed and planned again, costing PostgreSQL milliseconds per commit.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PreparedCommitTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task Commits_of_different_shapes_reuse_the_one_prepared_commit_statement()
    {
        // One connection, prepared after two uses, as the silo's pool would after five.
        var connectionString = new NpgsqlConnectionStringBuilder(Fixture.ConnectionString)
        {
            MaxPoolSize = 1, MaxAutoPrepare = 8, AutoPrepareMinUsages = 2,
        }.ConnectionString;
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var store = new LedgerStore(dataSource);
        var project = await NewProject(balance: 50m);
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
        var account = (await store.LoadAsync(AccountTable.Projects, project))!;
        var model = Guid.NewGuid();

        async Task Commit(LedgerRow? row, UsageReceipt? receipt)
        {
            // The statement with every part, so that commits of every shape run the same text.
            var commit = LedgerCommit.Of(account, [row!], receipt is null ? [] : [receipt]);
            await using var batch = dataSource.CreateBatch();
            batch.BatchCommands.Add(LedgerStatements.Commit(AccountKind.Project, LedgerStatements.CommitShape.All).BatchCommand(new LedgerCommitGroup([commit])));
            Assert.Equal(account.Id, (Guid)(await batch.ExecuteScalarAsync())!);
            account = (await store.LoadAsync(AccountTable.Projects, project))!;
        }

        Task Charge()
        {
            var usageId = Guid.NewGuid();
            var (row, problem) = AccountLedger.Charge(account, new AccountCharge(usageId, HistoryReasons.AiUsage, 1m, "USD", model, 1, 0, null), DateTimeOffset.UtcNow);
            Assert.Null(problem);
            return Commit(row, new UsageReceipt(usageId, 1m, "USD", 1, 0, PayingAccount.Project, account.Id, row!.BalanceAfter, 0m));
        }

        Task TopUp()
        {
            var (row, problem) = AccountLedger.Credit(account, new AccountCredit(2m, HistoryReasons.TopUp, Guid.NewGuid()), DateTimeOffset.UtcNow);
            Assert.Null(problem);
            return Commit(row, null);
        }

        // Two top-ups prepare the statement with a grant's types; then usage and top-ups alternate.
        await TopUp();
        await TopUp();
        for (var i = 0; i < 5; i++)
        {
            await Charge();
            await TopUp();
        }

        await using var connection = await dataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand(
            "SELECT coalesce(sum(generic_plans + custom_plans), 0)::bigint FROM pg_prepared_statements WHERE statement = $1",
            connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = LedgerStatements.Commit(AccountKind.Project, LedgerStatements.CommitShape.All).Sql });
        // The second top-up prepared it and ran it; the ten commits after it ran it too, none of them unprepared.
        Assert.Equal(11L, (long)(await command.ExecuteScalarAsync())!);
    }
}
