using System.Diagnostics;
using Billing.Bench.Processes;
using Billing.Storage;
using Npgsql;
using static Billing.Bench.Report.Progress;

namespace Billing.Bench.Measurement;

/// <summary>
/// <c>--summary</c>: the usage summary's query (the store the grain uses, <see cref="UsageSummaryStore"/>) on one
/// account with <c>--summary-rows</c> history rows (1,000,000) spread evenly over <c>--summary-days</c> days, for
/// 31 daily buckets ending now, grouped by model and not; and, for comparison, the same sums straight from the history
/// rows (what the summary would cost without the rollup). <c>--drop-summary-index</c> (with the ordinary cases) drops
/// 0008's indexes first (its triggers are gone since 0014: the grains keep the rollup).
/// </summary>
internal static class UsageSummaryBench
{
    private const int Runs = 20;
    public static async Task DropIndexesAsync(BenchDatabase database)
    {
        await ExecuteAsync(database.Bench, """
            DROP INDEX project_billing_history_usage_time_idx;
            DROP INDEX user_billing_history_usage_time_idx;
            """);
        Say("usage summary's indexes (0008) dropped: the write path without them (the rollup is the grains' since 0014)");
    }

    public static async Task<int> RunAsync(BenchOptions options, BenchDatabase database)
    {
        var user = Guid.NewGuid();
        var rows = options.SummaryRows;
        var now = DateTimeOffset.UtcNow;
        var watch = Stopwatch.StartNew();
        await SeedAsync(database.Bench, user, rows, options.SummaryDays, now);
        Say($"summary: seeded {rows:N0} history rows of one user over {options.SummaryDays} days in {watch.Elapsed.TotalSeconds:F1} s");
        await ExecuteAsync(database.Bench, "VACUUM (ANALYZE) user_billing_history");

        var store = new UsageSummaryStore(database.Bench);
        var to = now;
        var from = to.AddDays(-31);
        var inRange = await ScalarAsync(database.Bench,
            $"SELECT count(*) FROM user_billing_history WHERE \"user\" = '{user}' AND created_at >= '{from:O}' AND created_at < '{to:O}' AND reason = 'ai_usage_personal'");
        var plan = await PlanAsync(database.Bench, user, from, to);
        Say($"summary: {inRange:N0} usage rows in the 31 days; plan: {plan}");
        var failed = false;
        foreach (var source in new[] { "rollup", "history-rows" })
        {
            foreach (var grouped in new[] { true, false })
            {
                var times = new List<double>();
                long requests = 0;
                var buckets = 0;
                for (var i = 0; i < Runs + 1; i++)
                {
                    var t = Stopwatch.StartNew();
                    if (source == "rollup")
                    {
                        var result = await store.SumAsync(AccountKind.User, user, from, to, TimeSpan.FromDays(1), grouped);
                        (requests, buckets) = (result.Sum(b => b.Requests), result.Count);
                    }
                    else
                    {
                        (requests, buckets) = await DirectAsync(database.Bench, user, from, to, grouped);
                    }

                    if (i > 0) times.Add(t.Elapsed.TotalMilliseconds); // the first run warms the connection and the plan
                }

                times.Sort();
                var ok = requests == inRange;
                failed |= !ok;
                Console.WriteLine(
                    $"bench summary source={source} rows={rows} days={options.SummaryDays} range_days=31 groupBy={(grouped ? "model" : "none")} " +
                    $"buckets={buckets} rows_summed={requests} p50_ms={times[times.Count / 2]:F1} max_ms={times[^1]:F1} " +
                    $"check={(ok ? "ok" : "FAILED")}");
            }
        }

        return failed ? 1 : 0;
    }

    /// <summary>A signup-sized credit, then <paramref name="rows"/> − 1 personal usages of 0.00885 over 4 models, evenly in time.</summary>
    private static async Task SeedAsync(NpgsqlDataSource db, Guid user, int rows, int days, DateTimeOffset now)
    {
        const decimal cost = 0.00885m;
        var credit = cost * rows;
        var start = now.AddDays(-days);
        await using var command = db.CreateCommand("""
            WITH account AS (
                INSERT INTO user_billing ("user", balance, currency, version, created_at, updated_at)
                VALUES ($1, $2 - $3 * ($4 - 1), 'USD', $4, $5, $6))
            INSERT INTO user_billing_history (uid, "user", seq, amount, currency, reason, balance_after, usage_id, model_id,
                                              input_tokens, output_tokens, created_at)
            SELECT gen_random_uuid(), $1, i,
                   CASE WHEN i = 1 THEN $2 ELSE -$3 END, 'USD',
                   CASE WHEN i = 1 THEN 'top_up' ELSE 'ai_usage_personal' END,
                   $2 - $3 * (i - 1),
                   CASE WHEN i = 1 THEN NULL ELSE gen_random_uuid() END,
                   CASE WHEN i = 1 THEN NULL ELSE ('00000000-0000-4000-8000-00000000000' || (i % 4))::uuid END,
                   CASE WHEN i = 1 THEN NULL ELSE 1200 END, CASE WHEN i = 1 THEN NULL ELSE 350 END,
                   $5 + ($6 - $5) * ((i - 1)::float8 / $4)
            FROM generate_series(1, $4) AS i
            """);
        command.CommandTimeout = 600;
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = user });
        command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = credit });
        command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = cost });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = rows });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = start });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
        await command.ExecuteNonQueryAsync();

        // The rollup the grains would have left (every hour closed): rows written by SQL are not the grains' rows.
        await using var rollup = db.CreateCommand(Billing.Testing.LedgerInvariants.RollUpUserUsageRowsSql);
        rollup.CommandTimeout = 600;
        rollup.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = user });
        await rollup.ExecuteNonQueryAsync();
    }

    /// <summary>The same sums straight from the history rows (through the partial index): the baseline without the rollup.</summary>
    private static async Task<(long Requests, int Buckets)> DirectAsync(NpgsqlDataSource db, Guid user, DateTimeOffset from, DateTimeOffset to, bool grouped)
    {
        await using var command = db.CreateCommand("""
            SELECT count(*), coalesce(sum(requests), 0)::bigint FROM (
                SELECT date_bin('1 day', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), CASE WHEN $4 THEN model_id END, currency,
                       count(*) AS requests, sum(input_tokens), sum(output_tokens), sum(quota_used - amount)
                FROM user_billing_history
                WHERE "user" = $1 AND created_at >= $2 AND created_at < $3 AND reason IN ('ai_usage_personal', 'ai_usage_user_fallback')
                GROUP BY 1, 2, 3) b
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = user });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = from });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = to });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = grouped });
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(1), (int)reader.GetInt64(0));
    }

    private static async Task<string> PlanAsync(NpgsqlDataSource db, Guid user, DateTimeOffset from, DateTimeOffset to)
    {
        await using var command = db.CreateCommand(
            $"EXPLAIN SELECT count(*) FROM user_billing_history WHERE \"user\" = '{user}' AND created_at >= '{from:O}' AND created_at < '{to:O}' " +
            "AND reason IN ('ai_usage_personal', 'ai_usage_user_fallback')");
        var lines = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) lines.Add(reader.GetString(0).Trim());
        return string.Join(" | ", lines.Where(l => l.Contains("Scan")));
    }

    private static async Task ExecuteAsync(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        command.CommandTimeout = 600;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> ScalarAsync(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }
}
