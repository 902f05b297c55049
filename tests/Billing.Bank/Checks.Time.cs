using Npgsql;

namespace Billing.Bank;

/// <summary>The checks that watch time: H1 sampled while the bank runs, and holds and grants ending by themselves.</summary>
public static partial class Checks
{
    /// <summary>
    /// H1 while the load runs, in one statement (one snapshot): no account's active holds exceed its balance + quota
    /// left — so its available is never below zero — unless a grant expired (or was voided) since its oldest active
    /// hold was placed: expiring credit may leave holds above the balance (API.md), and then nothing new is granted.
    /// Holds within a second of their expiry are left out (the silo and the database may judge that second apart).
    /// </summary>
    private const string OverHeld = """
        WITH held AS (
            SELECT scope, account_id, sum(amount) AS held, min(created_at) AS oldest
            FROM billing_hold WHERE status = 'active' AND expires_at > now() + interval '1 second'
            GROUP BY scope, account_id),
        accts AS (
            SELECT 'user'::text AS scope, "user" AS id, balance, GREATEST(0, monthly_quota - month_used) AS quota_left FROM user_billing
            UNION ALL
            SELECT 'project', project, balance, GREATEST(0, monthly_quota - month_used) FROM project_billing)
        SELECT format('H1 during the run: %s %s holds %s > balance %s + quota left %s', h.scope, h.account_id, h.held, a.balance, a.quota_left)
        FROM held h JOIN accts a ON a.scope = h.scope AND a.id = h.account_id
        WHERE h.held > a.balance + a.quota_left
          AND NOT EXISTS (SELECT 1 FROM user_billing_history x WHERE h.scope = 'user' AND x."user" = h.account_id
                          AND x.reason IN ('grant_expired', 'grant_voided') AND x.created_at >= h.oldest - interval '1 second')
          AND NOT EXISTS (SELECT 1 FROM project_billing_history x WHERE h.scope = 'project' AND x.project = h.account_id
                          AND x.reason IN ('grant_expired', 'grant_voided') AND x.created_at >= h.oldest - interval '1 second')
        """;

    public static async Task SampleH1(string connectionString, TimeSpan every, Stats stats, Action<string> violation, CancellationToken stop)
    {
        // No pooling: PostgreSQL restarts under it.
        var cs = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 5, CommandTimeout = 10 }.ConnectionString;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, stop);
                await using var db = new NpgsqlConnection(cs);
                await db.OpenAsync(stop);
                await using var command = new NpgsqlCommand(OverHeld, db);
                await using var reader = await command.ExecuteReaderAsync(stop);
                while (await reader.ReadAsync(stop)) violation(reader.GetString(0));
                Interlocked.Increment(ref stats.H1Samples);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException or IOException)
            {
                // The database is restarting (a fault): the next sample tries again.
            }
        }
    }

    /// <summary>
    /// Waits until every hold has ended and every grant due to expire within the next second has expired, with no
    /// client calling (the accounts' timers and the silos' scans and grant clocks do it); what is still open when
    /// <paramref name="timeout"/> passes is a violation (H2, G2).
    /// </summary>
    public static async Task WaitForExpiries(string connectionString, TimeSpan timeout, Action<string> violation, Action<string> info)
    {
        var cs = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString;
        var started = DateTime.UtcNow;
        var until = started + timeout;
        while (true)
        {
            await using var db = new NpgsqlConnection(cs);
            await db.OpenAsync();
            await using var command = new NpgsqlCommand("""
                SELECT (SELECT count(*) FROM billing_hold WHERE status = 'active'),
                       (SELECT max(expires_at) FROM billing_hold WHERE status = 'active'),
                       (SELECT count(*) FROM credit_grant WHERE state IN ('scheduled', 'active') AND expires_at <= now() + interval '1 second')
                """, db);
            long holds, grants;
            DateTime? latest;
            await using (var reader = await command.ExecuteReaderAsync())
            {
                await reader.ReadAsync();
                holds = reader.GetInt64(0);
                latest = reader.IsDBNull(1) ? null : reader.GetDateTime(1);
                grants = reader.GetInt64(2);
            }

            if (holds == 0 && grants == 0)
            {
                info($"every hold ended and every due grant expired ({(DateTime.UtcNow - started).TotalSeconds:F1}s after the replay)");
                return;
            }

            if (DateTime.UtcNow >= until)
            {
                violation($"H2/G2 {timeout.TotalSeconds}s after the replay: {holds} hold(s) still active (latest expiry {latest:O}), {grants} grant(s) past their expiry not expired");
                return;
            }

            await Task.Delay(500);
        }
    }
}
