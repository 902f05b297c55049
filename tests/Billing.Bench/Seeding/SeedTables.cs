using Npgsql;

namespace Billing.Bench.Seeding;

/// <summary>The seed's tables (billing_service.rs), separate from the real ledger, and their accounts.</summary>
public static class SeedTables
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS seed_project_billing (
            project    uuid        PRIMARY KEY,
            "user"     uuid        NOT NULL,
            balance    numeric     NOT NULL,
            currency   text        NOT NULL DEFAULT 'USD',
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL);
        CREATE TABLE IF NOT EXISTS seed_project_billing_history (
            uid        uuid        PRIMARY KEY,
            project    uuid        NOT NULL REFERENCES seed_project_billing (project),
            "user"     uuid,
            amount     numeric     NOT NULL,
            currency   text        NOT NULL,
            reason     text        NOT NULL,
            extra      jsonb,
            created_at timestamptz NOT NULL);
        CREATE INDEX IF NOT EXISTS seed_project_billing_history_project_idx ON seed_project_billing_history (project);
        """;

    /// <summary>Seed accounts with an opening history row, so that balance = sum of history holds from the start.</summary>
    public static async Task CreateAccountsAsync(NpgsqlDataSource db, IReadOnlyList<(Guid Project, Guid User)> accounts, decimal balance, string table = "seed_project_billing")
    {
        await using var command = db.CreateCommand($"""
            WITH a AS (
                INSERT INTO {table} (project, "user", balance, created_at, updated_at)
                SELECT p, u, $3, now(), now() FROM unnest($1::uuid[], $2::uuid[]) AS t(p, u)
                ON CONFLICT DO NOTHING RETURNING project, "user")
            INSERT INTO {table}_history (uid, project, "user", amount, currency, reason, created_at)
            SELECT gen_random_uuid(), project, "user", $3, 'USD', 'top_up', now() FROM a
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = accounts.Select(a => a.Project).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = accounts.Select(a => a.User).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = balance });
        await command.ExecuteNonQueryAsync();
    }
}
