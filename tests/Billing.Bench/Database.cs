using Npgsql;

namespace Billing.Bench;

/// <summary>SQL the bench runs itself: the seed's tables and transaction, the DB-only experiment, the ledger checks.</summary>
public static class Database
{
    public const decimal Cost = 0.00885m; // 1200 input + 350 output tokens at 3.00 / 15.00 USD per million
    public const long InputTokens = 1200;
    public const long OutputTokens = 350;

    public static async Task ExecuteAsync(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        command.CommandTimeout = 600;
        await command.ExecuteNonQueryAsync();
    }

    public static async Task<T> ScalarAsync<T>(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        command.CommandTimeout = 600;
        return (T)(await command.ExecuteScalarAsync())!;
    }

    // ---- the seed (billing_service.rs): its tables, separate from the real ledger ----

    public const string SeedSchema = """
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
    public static async Task SeedAccountsAsync(NpgsqlDataSource db, IReadOnlyList<(Guid Project, Guid User)> accounts, decimal balance, string table = "seed_project_billing")
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

    /// <summary>
    /// deduct_from_project of the seed: BEGIN; SELECT … FOR UPDATE; INSERT history; UPDATE balance; COMMIT.
    /// (Npgsql sends BEGIN together with the first statement: 4 round trips, one fewer than SeaORM/sqlx.)
    /// </summary>
    public static async Task<Outcome> SeedDeductAsync(NpgsqlDataSource db, Guid project, Guid user, Guid modelId)
    {
        await using var connection = await db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        decimal balance;
        await using (var select = new NpgsqlCommand(
            "SELECT project, \"user\", balance, currency, created_at, updated_at FROM seed_project_billing WHERE project = $1 FOR UPDATE", connection, transaction))
        {
            select.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = project });
            await using var reader = await select.ExecuteReaderAsync();
            if (!await reader.ReadAsync()) return Outcome.Refused("Project billing account not found");
            balance = reader.GetDecimal(2);
        }

        if (balance < Cost)
        {
            await transaction.RollbackAsync();
            return Outcome.Refused("Project balance insufficient");
        }

        var now = DateTimeOffset.UtcNow;
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO seed_project_billing_history (uid, project, "user", amount, currency, reason, extra, created_at)
            VALUES ($1, $2, NULL, $3, 'USD', 'ai_usage', $4::jsonb, $5)
            """, connection, transaction))
        {
            insert.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = Guid.NewGuid() });
            insert.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = project });
            insert.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = -Cost });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue =
                $"{{\"model_id\":\"{modelId}\",\"input_tokens\":{InputTokens},\"output_tokens\":{OutputTokens},\"deducted_from\":\"project\"}}" });
            insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
            await insert.ExecuteNonQueryAsync();
        }

        await using (var update = new NpgsqlCommand(
            "UPDATE seed_project_billing SET \"user\" = $2, balance = $3, currency = $4, updated_at = $5 WHERE project = $1", connection, transaction))
        {
            update.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = project });
            update.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = user });
            update.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = balance - Cost });
            update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "USD" });
            update.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
            await update.ExecuteNonQueryAsync();
        }

        await transaction.CommitAsync();
        return Outcome.Ok(Cost);
    }

    // ---- DB-only experiment: should one silo's account grains share round trips across accounts? ----

    public const string ExperimentSchema = """
        CREATE TABLE IF NOT EXISTS xp_project_billing (LIKE project_billing INCLUDING ALL);
        CREATE TABLE IF NOT EXISTS xp_project_billing_history (LIKE project_billing_history INCLUDING ALL);
        CREATE TABLE IF NOT EXISTS xp_usage_record (LIKE usage_record INCLUDING ALL);
        """;

    /// <summary>The real history table's foreign key to its account, which LIKE does not copy (--xp-fk).</summary>
    public const string ExperimentForeignKey = """
        ALTER TABLE xp_project_billing_history ADD FOREIGN KEY (project) REFERENCES xp_project_billing (project);
        """;

    /// <summary>
    /// One account's write as the account grain sends it (account update guarded by version, history row, usage
    /// record, in one statement), but deciding in SQL: the experiment has no grain memory.
    /// </summary>
    private const string ExperimentWrite = """
        WITH acct AS (
            UPDATE xp_project_billing SET balance = balance - $2, version = version + 1, updated_at = $3
            WHERE project = $1 AND balance >= $2
            RETURNING balance, version),
        hist AS (
            INSERT INTO xp_project_billing_history (uid, project, seq, amount, quota_used, currency, reason, balance_after, month_used_after,
                                                    usage_id, "user", model_id, input_tokens, output_tokens, created_at)
            SELECT $4, $1, acct.version, -$2, 0, 'USD', 'ai_usage', acct.balance, 0, $5, $6, $7, 1200, 350, $3 FROM acct),
        usage AS (
            INSERT INTO xp_usage_record (usage_id, outcome, paid_by, account_id, cost, currency, input_tokens, output_tokens, balance_after, quota_used, created_at)
            SELECT $5, 'charged', 'project', $1, $2, 'USD', 1200, 350, acct.balance, 0, $3 FROM acct)
        SELECT count(*) FROM acct
        """;

    public static async Task ExperimentAccountsAsync(NpgsqlDataSource db, IReadOnlyList<(Guid Project, Guid User)> accounts, decimal balance)
    {
        await using var command = db.CreateCommand("""
            INSERT INTO xp_project_billing (project, "user", balance, version, created_at, updated_at)
            SELECT p, u, $3, 1, now(), now() FROM unnest($1::uuid[], $2::uuid[]) AS t(p, u) ON CONFLICT DO NOTHING;
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = accounts.Select(a => a.Project).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = accounts.Select(a => a.User).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = balance });
        await command.ExecuteNonQueryAsync();
        // Opening rows so that balance = sum(history) holds for the experiment's tables as well.
        await ExecuteAsync(db, """
            INSERT INTO xp_project_billing_history (uid, project, seq, amount, currency, reason, balance_after, created_at)
            SELECT gen_random_uuid(), project, 1, balance, 'USD', 'top_up', balance, now() FROM xp_project_billing b
            WHERE NOT EXISTS (SELECT 1 FROM xp_project_billing_history h WHERE h.project = b.project)
            """);
    }

    public static NpgsqlBatchCommand ExperimentCommand(Guid project, Guid user, Guid modelId)
    {
        var command = new NpgsqlBatchCommand(ExperimentWrite);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = project });
        command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = Cost });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = DateTimeOffset.UtcNow });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = Guid.NewGuid() });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = Guid.NewGuid() });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = user });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = modelId });
        return command;
    }

    /// <summary>db-single: each account write is its own statement, round trip and commit.</summary>
    public static async Task<Outcome> ExperimentSingleAsync(NpgsqlDataSource db, Guid project, Guid user, Guid modelId)
    {
        await using var batch = db.CreateBatch();
        batch.BatchCommands.Add(ExperimentCommand(project, user, modelId));
        var written = (long)(await batch.ExecuteScalarAsync())!;
        return written == 1 ? Outcome.Ok(Cost) : Outcome.Refused("insufficient");
    }

    /// <summary>
    /// Usage rows and account write statements of the grains between two instants: rows one statement writes share the
    /// account and the timestamp of the batch, so ops per write = rows / distinct (account, created_at).
    /// </summary>
    public static async Task<(long Rows, long Writes)> GrainWritesAsync(NpgsqlDataSource db, DateTime from, DateTime to)
    {
        await using var command = db.CreateCommand("""
            SELECT count(*), count(DISTINCT (project, created_at)) FROM project_billing_history
            WHERE reason = 'ai_usage' AND created_at >= $1 AND created_at < $2
            """);
        command.CommandTimeout = 600;
        command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = from });
        command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = to });
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    // ---- ledger checks ----

    public sealed record LedgerTotals(long BadAccounts, long Charged, decimal ChargedCost, decimal Balance, long HistoryRows);

    /// <summary>The real ledger: accounts whose balance ≠ sum(history), charged usage records, total project balance.</summary>
    public static async Task<LedgerTotals> RealLedgerAsync(NpgsqlDataSource db)
    {
        await using var command = db.CreateCommand("""
            SELECT
              (SELECT count(*) FROM project_billing b
                 LEFT JOIN (SELECT project, sum(amount) s FROM project_billing_history GROUP BY project) h USING (project)
                 WHERE b.balance <> coalesce(h.s, 0))
            + (SELECT count(*) FROM user_billing b
                 LEFT JOIN (SELECT "user", sum(amount) s FROM user_billing_history GROUP BY "user") h USING ("user")
                 WHERE b.balance <> coalesce(h.s, 0))
            + (SELECT count(*) FROM project_billing b
                 LEFT JOIN (SELECT project, max(seq) m, count(*) c FROM project_billing_history GROUP BY project) h USING (project)
                 WHERE b.version <> coalesce(h.m, 0) OR coalesce(h.c, 0) <> coalesce(h.m, 0)),
              (SELECT count(*) FROM usage_record WHERE outcome = 'charged'),
              (SELECT coalesce(sum(cost), 0) FROM usage_record WHERE outcome = 'charged'),
              (SELECT coalesce(sum(balance), 0) FROM project_billing) + (SELECT coalesce(sum(balance), 0) FROM user_billing),
              (SELECT count(*) FROM project_billing_history)
            """);
        command.CommandTimeout = 600;
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new LedgerTotals(reader.GetInt64(0), reader.GetInt64(1), reader.GetDecimal(2), reader.GetDecimal(3), reader.GetInt64(4));
    }

    /// <summary>The seed's or the experiment's tables (no usage records for the seed: history rows are counted instead).</summary>
    public static async Task<LedgerTotals> SideLedgerAsync(NpgsqlDataSource db, string table)
    {
        await using var command = db.CreateCommand($"""
            SELECT
              (SELECT count(*) FROM {table} b
                 LEFT JOIN (SELECT project, sum(amount) s FROM {table}_history GROUP BY project) h USING (project)
                 WHERE b.balance <> coalesce(h.s, 0)),
              (SELECT count(*) FROM {table}_history WHERE reason = 'ai_usage'),
              (SELECT coalesce(-sum(amount), 0) FROM {table}_history WHERE reason = 'ai_usage'),
              (SELECT coalesce(sum(balance), 0) FROM {table}),
              (SELECT count(*) FROM {table}_history)
            """);
        command.CommandTimeout = 600;
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new LedgerTotals(reader.GetInt64(0), reader.GetInt64(1), reader.GetDecimal(2), reader.GetDecimal(3), reader.GetInt64(4));
    }

    /// <summary>
    /// <see cref="AccountWrites"/>: updates of the account table (one per account write statement: a group-commit batch
    /// of the grains, a seed transaction); <see cref="WalSyncs"/>: WAL flushes (fsyncs) of the server. From the
    /// statistics views, which backends flush about once a second: a few % off over a case.
    /// </summary>
    public sealed record PgCounters(long AccountWrites, long WalSyncs, long WalWrites, long WalBytes);

    public static async Task<PgCounters> CountersAsync(NpgsqlDataSource db, string accountTable)
    {
        await using var command = db.CreateCommand("""
            SELECT (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = $1),
                   wal_sync, wal_write, wal_bytes::bigint FROM pg_stat_wal
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = accountTable });
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new PgCounters(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));
    }
}
