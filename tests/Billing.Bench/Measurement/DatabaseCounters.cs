using Npgsql;

namespace Billing.Bench.Measurement;

/// <summary>
/// <see cref="AccountWrites"/>: updates of the account table (one per account write statement: a group-commit batch
/// of the grains, a seed transaction); <see cref="WalSyncs"/>: WAL flushes (fsyncs) of the server. From the
/// statistics views, which backends flush about once a second: a few % off over a case.
/// </summary>
public sealed record PgCounters(long AccountWrites, long WalSyncs, long WalWrites, long WalBytes)
{
    /// <summary>The counters now; <paramref name="accountTable"/> may name its schema (xp.project_billing).</summary>
    public static async Task<PgCounters> CountersAsync(NpgsqlDataSource db, string accountTable)
    {
        await using var command = db.CreateCommand("""
            SELECT (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = to_regclass($1)),
                   wal_sync, wal_write, wal_bytes::bigint FROM pg_stat_wal
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = accountTable });
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new PgCounters(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));
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
}
