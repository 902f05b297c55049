using Npgsql;

namespace Billing.Bench.Measurement;

/// <summary>
/// The ledger checks after each case: accounts whose balance ≠ sum(history) (or version ≠ newest seq), charges
/// stored, their cost, the total balance.
/// </summary>
public sealed record LedgerTotals(long BadAccounts, long Charged, decimal ChargedCost, decimal Balance, long HistoryRows)
{
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
}
