using Billing.Accounts;
using Billing.Storage;
using Billing.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// Migration 0014 on a database that has lived under 0008's triggers: the rows they rolled up stay in
/// <c>usage_hourly</c>, the triggers are gone, and the next usage adds up on the account row, so the rollup still
/// equals the usage rows' sums.
/// </summary>
public sealed class UsageRollupMigrationTests
{
    private const string RollupMigration = "billing/0014_usage_hour_on_the_account_row.sql";

    [Fact]
    public async Task Usage_rolled_up_by_the_old_triggers_stays_and_the_next_usage_adds_up_on_the_account_row()
    {
        var before = SchemaMigrator.Files.TakeWhile(f => f != RollupMigration).ToArray();
        Assert.Contains(RollupMigration, SchemaMigrator.Files);
        var database = await PostgresServer.Instance.CreateDatabaseAsync("migrate", before);
        var (user, model) = (Guid.NewGuid(), Guid.NewGuid());
        var hour = UsageRollup.HourOf(DateTimeOffset.UtcNow);
        var at = hour.AddMinutes(10); // every row of this test in one hour
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            // What the code before 0014 wrote: a user's grant of 10 and a personal usage of 2.5, rolled up by the trigger.
            await MigrationSql.ExecuteAsync(connection, """
                INSERT INTO user_billing ("user", balance, version, created_at, updated_at) VALUES ($1, 7.5, 2, $3, $3);
                INSERT INTO credit_grant (grant_id, scope, account_id, category, priority, amount, remaining, currency, effective_at, state, created_at, updated_at)
                VALUES ($4, 'user', $1, 'paid', 0, 10, 7.5, 'USD', $3, 'active', $3, $3);
                INSERT INTO user_billing_history (uid, "user", seq, amount, currency, reason, balance_after, grant_id, created_at) VALUES
                    (gen_random_uuid(), $1, 1, 10, 'USD', 'signup_credit', 10, $4, $3);
                INSERT INTO user_billing_history (uid, "user", seq, amount, currency, reason, balance_after, model_id, input_tokens, output_tokens, usage_id, grant_id, created_at) VALUES
                    (gen_random_uuid(), $1, 2, -2.5, 'USD', 'ai_usage_personal', 7.5, $2, 100, 10, $5, $4, $3);
                INSERT INTO usage_record (usage_id, outcome, paid_by, account_id, cost, currency, input_tokens, output_tokens, balance_after, created_at)
                VALUES ($5, 'charged', 'user', $1, 2.5, 'USD', 100, 10, 7.5, $3)
                """, user, model, at, Guid.NewGuid(), Guid.NewGuid());
        }

        Assert.Equal(1, await Scalar(database, "SELECT count(*) FROM usage_hourly WHERE account = $1", user)); // the old trigger's row
        Assert.Equal(SchemaMigrator.Files.Count - before.Length, await SchemaMigrator.ApplyAsync(database, NullLogger.Instance)); // 0014 and every later file
        Assert.Equal(0, await Scalar(database, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%usage_hourly%'", user));
        await LedgerInvariants.AssertHoldAsync(database);

        // The upgraded account goes on: its next usage of the same hour and model opens its hour on the account row.
        var store = new LedgerStore(NpgsqlDataSource.Create(database));
        var account = (await store.LoadAsync(AccountTable.Users, user))!;
        Assert.Null(account.UsageHour);
        var usageId = Guid.NewGuid();
        var (row, problem) = AccountLedger.Charge(account, new AccountCharge(usageId, HistoryReasons.AiUsagePersonal, 1.25m, "USD", model, 50, 5, null), at);
        Assert.Null(problem);
        var receipt = new UsageReceipt(usageId, 1.25m, "USD", 50, 5, PayingAccount.User, user, row!.BalanceAfter, 0m);
        Assert.True(await store.CommitAsync(LedgerCommit.Of(account, [row], [receipt])));

        Assert.Equal(new UsageHourTotal(hour, model, "USD", 1, 50, 5, 1.25m), (await store.LoadAsync(AccountTable.Users, user))!.UsageHour);
        Assert.Empty(await LedgerInvariants.FindUsageRollupViolationsAsync(database)); // usage_hourly 1 + the open hour 1 = the 2 rows
        var summary = new UsageSummaryStore(NpgsqlDataSource.Create(database));
        var bucket = Assert.Single(await summary.SumAsync(AccountKind.User, user, hour, hour.AddHours(1), TimeSpan.FromHours(1), groupByModel: false));
        Assert.Equal((2L, 150L, 15L, 3.75m), (bucket.Requests, bucket.InputTokens, bucket.OutputTokens, bucket.Cost));
    }

    [Fact]
    public async Task A_usage_row_missing_from_the_rollup_is_a_violation()
    {
        var database = await PostgresServer.Instance.CreateDatabaseAsync("rollup", SchemaMigrator.Files.ToArray());
        var user = Guid.NewGuid();
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            // A usage row written behind the grains' back: neither usage_hourly nor the account's open hour has it.
            await MigrationSql.ExecuteAsync(connection, """
                INSERT INTO user_billing ("user", balance, version, created_at, updated_at) VALUES ($1, 0, 1, now(), now());
                INSERT INTO user_billing_history (uid, "user", seq, amount, currency, reason, balance_after, model_id, input_tokens, output_tokens, usage_id, created_at)
                VALUES (gen_random_uuid(), $1, 1, 0, 'USD', 'ai_usage_personal', 0, gen_random_uuid(), 1, 1, gen_random_uuid(), now())
                """, user);
        }

        var violation = Assert.Single(await LedgerInvariants.FindUsageRollupViolationsAsync(database));
        Assert.Contains($"usage rollup user {user}", violation, StringComparison.Ordinal);
    }

    private static async Task<long> Scalar(string database, string sql, Guid id)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        if (sql.Contains("$1", StringComparison.Ordinal)) command.Parameters.Add(new NpgsqlParameter { Value = id });
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
