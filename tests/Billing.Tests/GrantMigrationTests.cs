using Billing.Accounts;
using Billing.Storage;
using Billing.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// Migrations on a database that has lived under the old schema. 0007: each account's balance becomes one grant, so the
/// upgraded ledger keeps its balances, I1 and G1, and the next charge draws on that grant. 0013: the entry rows
/// written before it still explain their rows, beside the rows that name their one grant themselves.
/// </summary>
public sealed class GrantMigrationTests
{
    private const string GrantsMigration = "billing/0007_credit_grants.sql";

    [Fact]
    public async Task Existing_balances_become_one_grant_each_and_every_invariant_holds_after_the_upgrade()
    {
        var before = SchemaMigrator.Files.TakeWhile(f => f != GrantsMigration).ToArray();
        Assert.Contains(GrantsMigration, SchemaMigrator.Files);
        var database = await PostgresServer.Instance.CreateDatabaseAsync("migrate", before);
        var (user, spentUser, emptyProject, project) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            // What the old code wrote: a user with signup and a charge (7.5 left), a user who spent everything, a
            // project without the first-project credit (0) and one with it, topped up (25).
            await MigrationSql.ExecuteAsync(connection, """
                INSERT INTO user_billing ("user", balance, version, created_at, updated_at) VALUES ($1, 7.5, 2, now(), now()), ($2, 0, 2, now(), now());
                INSERT INTO user_billing_history (uid, "user", seq, amount, currency, reason, balance_after, created_at) VALUES
                    (gen_random_uuid(), $1, 1, 10, 'USD', 'signup_credit', 10, now()),
                    (gen_random_uuid(), $1, 2, -2.5, 'USD', 'ai_usage_personal', 7.5, now()),
                    (gen_random_uuid(), $2, 1, 10, 'USD', 'signup_credit', 10, now()),
                    (gen_random_uuid(), $2, 2, -10, 'USD', 'ai_usage_personal', 0, now());
                INSERT INTO project_billing (project, "user", balance, initial_credit_granted, version, created_at, updated_at) VALUES
                    ($3, $1, 0, false, 0, now(), now()), ($4, $2, 25, true, 2, now(), now());
                INSERT INTO first_project_credit (creator, project, claimed_at) VALUES ($2, $4, now());
                INSERT INTO project_billing_history (uid, project, seq, amount, currency, reason, balance_after, credit_id, created_at) VALUES
                    (gen_random_uuid(), $4, 1, 20, 'USD', 'first_project_credit', 20, null, now()),
                    (gen_random_uuid(), $4, 2, 5, 'USD', 'top_up', 25, gen_random_uuid(), now());
                """, user, spentUser, emptyProject, project);
        }

        var applied = await SchemaMigrator.ApplyAsync(database, NullLogger.Instance);

        Assert.Equal(SchemaMigrator.Files.Count - before.Length, applied); // 0007 and the files after it
        await LedgerInvariants.AssertHoldAsync(database); // I1 … I5, G1, G2 over every account
        var store = new LedgerStore(NpgsqlDataSource.Create(database));
        var userGrant = Assert.Single((await store.LoadAsync(AccountTable.Users, user))!.Grants);
        Assert.Equal((7.5m, 7.5m, GrantStatus.Active, GrantCategory.Paid, (DateTimeOffset?)null), (userGrant.Amount, userGrant.Remaining, userGrant.Status, userGrant.Category, userGrant.ExpiresAt));
        Assert.Empty((await store.LoadAsync(AccountTable.Users, spentUser))!.Grants);
        Assert.Empty((await store.LoadAsync(AccountTable.Projects, emptyProject))!.Grants);
        Assert.Equal(25m, Assert.Single((await store.LoadAsync(AccountTable.Projects, project))!.Grants).Remaining);

        // The upgraded account goes on: a charge draws on the migrated grant, and the ledger still adds up.
        var account = (await store.LoadAsync(AccountTable.Users, user))!;
        var usageId = Guid.NewGuid();
        var (row, problem) = AccountLedger.Charge(account, new AccountCharge(usageId, HistoryReasons.AiUsagePersonal, 1.25m, "USD", Guid.NewGuid(), 1, 0, null), DateTimeOffset.UtcNow);
        Assert.Null(problem);
        var receipt = new UsageReceipt(usageId, 1.25m, "USD", 1, 0, PayingAccount.User, user, row!.BalanceAfter, 0m);
        Assert.True(await store.CommitAsync(LedgerCommit.Of(account, [row], [receipt])));
        Assert.Equal([new GrantChange(userGrant.GrantId, -1.25m, userGrant with { Remaining = 6.25m })], row.GrantChanges);
        await LedgerInvariants.AssertHoldAsync(database);
    }

    [Fact]
    public async Task Entry_rows_written_before_0013_read_as_before_and_the_next_charge_names_its_grant_in_its_row()
    {
        const string InRowMigration = "billing/0013_history_names_its_one_grant.sql";
        var before = SchemaMigrator.Files.TakeWhile(f => f != InRowMigration).ToArray();
        Assert.Contains(InRowMigration, SchemaMigrator.Files);
        var database = await PostgresServer.Instance.CreateDatabaseAsync("migrate", before);
        var (user, grant) = (Guid.NewGuid(), Guid.NewGuid());
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            // What the code before 0013 wrote: a grant of 10 (its grant_credit row and entry), a charge of 2.5 (its entry).
            await MigrationSql.ExecuteAsync(connection, """
                INSERT INTO user_billing ("user", balance, version, created_at, updated_at) VALUES ($1, 7.5, 2, now(), now());
                INSERT INTO credit_grant (grant_id, scope, account_id, category, priority, amount, remaining, currency, effective_at, state, created_at, updated_at)
                    VALUES ($2, 'user', $1, 'paid', 50, 10, 7.5, 'USD', now(), 'active', now(), now());
                INSERT INTO user_billing_history (uid, "user", seq, amount, currency, reason, balance_after, created_at) VALUES
                    (gen_random_uuid(), $1, 1, 10, 'USD', 'grant_credit', 10, now()),
                    (gen_random_uuid(), $1, 2, -2.5, 'USD', 'ai_usage_personal', 7.5, now());
                INSERT INTO credit_grant_entry (scope, account_id, seq, ord, grant_id, amount) VALUES
                    ('user', $1, 1, 0, $2, 10), ('user', $1, 2, 0, $2, -2.5)
                """, user, grant);
        }

        await SchemaMigrator.ApplyAsync(database, NullLogger.Instance);

        await LedgerInvariants.AssertHoldAsync(database); // G1, G2 through credit_grant_movement: the old entries count
        var store = new LedgerStore(NpgsqlDataSource.Create(database));
        var account = (await store.LoadAsync(AccountTable.Users, user))!;
        var usageId = Guid.NewGuid();
        var (row, problem) = AccountLedger.Charge(account, new AccountCharge(usageId, HistoryReasons.AiUsagePersonal, 1.25m, "USD", Guid.NewGuid(), 1, 0, null), DateTimeOffset.UtcNow);
        Assert.Null(problem);
        Assert.Equal(grant, row!.GrantInRow);
        var receipt = new UsageReceipt(usageId, 1.25m, "USD", 1, 0, PayingAccount.User, user, row.BalanceAfter, 0m);
        Assert.True(await store.CommitAsync(LedgerCommit.Of(account, [row], [receipt])));

        var history = (await store.ReadHistoryAsync(AccountTable.Users, user, new HistoryQuery(10, null))).Items;
        Assert.Equal([[new GrantDraw(grant, -1.25m)], [new GrantDraw(grant, -2.5m)], [new GrantDraw(grant, 10m)]], history.Select(h => h.Grants!));
        await LedgerInvariants.AssertHoldAsync(database);
    }

    [Fact]
    public async Task A_history_row_naming_another_accounts_grant_is_a_G2_violation()
    {
        // The row's foreign key only says the grant exists; the invariants, reading the row's grant_id through
        // credit_grant_movement, catch a grant of another account.
        var database = await PostgresServer.Instance.CreateDatabaseAsync("movement");
        var (user, other, grant) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            await MigrationSql.ExecuteAsync(connection, """
                INSERT INTO user_billing ("user", balance, version, created_at, updated_at) VALUES ($1, 10, 1, now(), now()), ($2, 0, 0, now(), now());
                INSERT INTO credit_grant (grant_id, scope, account_id, category, priority, amount, remaining, currency, effective_at, state, created_at, updated_at)
                    VALUES ($3, 'user', $1, 'paid', 50, 10, 10, 'USD', now(), 'active', now(), now());
                INSERT INTO user_billing_history (uid, "user", seq, amount, currency, reason, balance_after, grant_id, created_at) VALUES
                    (gen_random_uuid(), $1, 1, 10, 'USD', 'grant_credit', 10, $3, now())
                """, user, other, grant);
        }

        Assert.Empty(await LedgerInvariants.FindViolationsAsync(database));
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            // A zero-amount row of the other user that names the first user's grant.
            await MigrationSql.ExecuteAsync(connection, """
                UPDATE user_billing SET version = 1 WHERE "user" = $2;
                INSERT INTO user_billing_history (uid, "user", seq, amount, currency, reason, balance_after, grant_id, created_at) VALUES
                    (gen_random_uuid(), $2, 1, 0, 'USD', 'grant_credit', 0, $3, now())
                """, user, other, grant);
        }

        var violations = await LedgerInvariants.FindViolationsAsync(database);
        Assert.Contains(violations, v => v.StartsWith("G2", StringComparison.Ordinal) && v.Contains($"grant {grant} of User {user}: an entry in another account", StringComparison.Ordinal));
    }
}
