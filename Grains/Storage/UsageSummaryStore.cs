using Npgsql;

namespace Billing.Storage;

/// <summary>
/// Sums an account's usage history rows per UTC hour or day (and model). Served by the partial covering indexes of
/// <c>0008_usage_summary.sql</c>: the reason filter below is written as literals, exactly as the indexes' predicates,
/// so PostgreSQL can use them (a parameter would hide the match); every value travels as a parameter.
/// </summary>
public sealed class UsageSummaryStore(NpgsqlDataSource dataSource)
{
    /// <summary>The reasons of the rows in which the account itself paid for a usage (a project's fallback markers are 0 and name the user who paid).</summary>
    public static IReadOnlyList<string> UsageReasons(AccountKind kind) => kind == AccountKind.Project
        ? [HistoryReasons.AiUsage]
        : [HistoryReasons.AiUsagePersonal, HistoryReasons.AiUsageUserFallback];

    private const string ProjectFilter = "reason = 'ai_usage'";
    private const string UserFilter = "reason IN ('ai_usage_personal', 'ai_usage_user_fallback')";

    public async Task<List<UsageBucket>> SumAsync(AccountKind kind, Guid accountId, DateTimeOffset from, DateTimeOffset to, TimeSpan bucket,
        bool groupByModel, CancellationToken cancellationToken = default)
    {
        var table = AccountTable.For(kind);
        var filter = kind == AccountKind.Project ? ProjectFilter : UserFilter;
        // date_bin from a UTC midnight: buckets start on whole UTC hours / days whatever the session's time zone.
        await using var command = dataSource.CreateCommand($"""
            SELECT date_bin($4::interval, created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket_start,
                   CASE WHEN $5::boolean THEN model_id END AS model,
                   currency,
                   count(*) AS requests,
                   coalesce(sum(input_tokens), 0) AS input_tokens,
                   coalesce(sum(output_tokens), 0) AS output_tokens,
                   sum(quota_used - amount) AS cost
            FROM {table.History}
            WHERE {table.Key} = $1 AND created_at >= $2 AND created_at < $3 AND {filter}
            GROUP BY 1, 2, 3
            ORDER BY 1, 2 NULLS FIRST, 3
            """);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<Guid> { TypedValue = accountId });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = from });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = to });
        p.Add(new NpgsqlParameter<TimeSpan> { TypedValue = bucket });
        p.Add(new NpgsqlParameter<bool> { TypedValue = groupByModel });
        var buckets = new List<UsageBucket>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            buckets.Add(new UsageBucket(
                reader.GetFieldValue<DateTimeOffset>(0),
                reader.IsDBNull(1) ? null : reader.GetGuid(1),
                reader.GetInt64(3),
                (long)reader.GetDecimal(4),
                (long)reader.GetDecimal(5),
                reader.GetDecimal(6),
                reader.GetString(2)));
        }

        return buckets;
    }
}
