using System.Diagnostics;
using Npgsql;

namespace Billing.Testing;

/// <summary>For tests that hold a row lock to keep a write in flight: wait until the write is stuck on it, not a fixed sleep.</summary>
public static class LockWaits
{
    /// <summary>
    /// Polls until a backend waits on a lock that <paramref name="holder"/>'s transaction holds (the write under test
    /// has reached the database and is stuck there); throws if none does within <paramref name="within"/> (30 s).
    /// Only the holder's own locks count, so a test running beside it in the same database cannot satisfy it.
    /// </summary>
    public static async Task UntilBlockedByAsync(string connectionString, NpgsqlConnection holder, TimeSpan? within = null)
    {
        var limit = within ?? TimeSpan.FromSeconds(30);
        var waited = Stopwatch.StartNew();
        // A connection of its own: the holder is inside its transaction, and a backend keeps one snapshot of
        // pg_stat_activity for a whole transaction.
        await using var watcher = new NpgsqlConnection(connectionString);
        await watcher.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", watcher);
        command.Parameters.Add(new NpgsqlParameter { Value = holder.ProcessID });
        while ((long)(await command.ExecuteScalarAsync())! == 0)
        {
            if (waited.Elapsed > limit) throw new TimeoutException($"no backend waited on a lock of backend {holder.ProcessID} within {limit}");
            await Task.Delay(20);
        }
    }
}
