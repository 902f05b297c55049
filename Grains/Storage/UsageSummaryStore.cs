using Npgsql;

namespace Billing.Storage;

/// <summary>
/// Sums an account's usage history rows per UTC hour or day (and model). The whole hours of the range come from the
/// hourly rollup: <c>usage_hourly</c> and the account's open hour (its <c>usage_hour_*</c> columns), kept in the same
/// statement as the history rows (<see cref="Billing.Accounts.UsageRollup"/>); the parts of an hour at either end of a range that does not start or end on a
/// whole hour come from the history rows themselves. Both are numeric sums, so the result is exactly the sum of the
/// rows. The reason filter is written as literals, exactly as the partial indexes' predicates (a parameter would hide
/// the match from the planner); every value travels as a parameter.
/// </summary>
public sealed class UsageSummaryStore(NpgsqlDataSource dataSource)
{
    // The rows UsageRollup.Counts rolls up, written as the partial indexes' predicates.
    private const string ProjectFilter = "reason = 'ai_usage'";
    private const string UserFilter = "reason IN ('ai_usage_personal', 'ai_usage_user_fallback')";
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    public async Task<List<UsageBucket>> SumAsync(AccountKind kind, Guid accountId, DateTimeOffset from, DateTimeOffset to, TimeSpan bucket,
        bool groupByModel, CancellationToken cancellationToken = default)
    {
        var table = AccountTable.For(kind);
        var filter = kind == AccountKind.Project ? ProjectFilter : UserFilter;
        // Whole hours [firstHour, lastHour) from the rollup; [from, firstHour) and [lastHour, to) from the rows.
        var firstHour = Ceiling(from);
        var lastHour = Floor(to);
        if (firstHour >= lastHour) firstHour = lastHour = to;

        // date_bin from a UTC midnight: buckets start on whole UTC hours / days whatever the session's time zone.
        await using var command = dataSource.CreateCommand($"""
            WITH parts AS (
                SELECT hour AS at, model_id, currency, requests, input_tokens, output_tokens, cost
                FROM usage_hourly
                WHERE scope = $1 AND account = $2 AND hour >= $5 AND hour < $6
                UNION ALL
                SELECT usage_hour, usage_hour_model_id, usage_hour_currency, usage_hour_requests, usage_hour_input_tokens,
                       usage_hour_output_tokens, usage_hour_cost
                FROM {table.Accounts}
                WHERE {table.Key} = $2 AND usage_hour >= $5 AND usage_hour < $6
                UNION ALL
                SELECT created_at, coalesce(model_id, '00000000-0000-0000-0000-000000000000'), currency, 1,
                       coalesce(input_tokens, 0), coalesce(output_tokens, 0), quota_used - amount
                FROM {table.History}
                WHERE {table.Key} = $2 AND {filter}
                  AND ((created_at >= $3 AND created_at < $5) OR (created_at >= $6 AND created_at < $4))
            )
            SELECT date_bin($7::interval, at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket_start,
                   CASE WHEN $8::boolean THEN model_id END AS model,
                   currency,
                   sum(requests)::bigint AS requests,
                   sum(input_tokens) AS input_tokens,
                   sum(output_tokens) AS output_tokens,
                   sum(cost) AS cost
            FROM parts
            GROUP BY 1, 2, 3
            ORDER BY 1, 2 NULLS FIRST, 3
            """);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<string> { TypedValue = table.Scope });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = accountId });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = from });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = to });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = firstHour });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = lastHour });
        p.Add(new NpgsqlParameter<TimeSpan> { TypedValue = bucket });
        p.Add(new NpgsqlParameter<bool> { TypedValue = groupByModel });
        var buckets = new List<UsageBucket>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            Guid? model = reader.IsDBNull(1) ? null : reader.GetGuid(1);
            buckets.Add(new UsageBucket(
                reader.GetFieldValue<DateTimeOffset>(0),
                model == Guid.Empty ? null : model,
                reader.GetInt64(3),
                (long)reader.GetDecimal(4),
                (long)reader.GetDecimal(5),
                reader.GetDecimal(6),
                reader.GetString(2)));
        }

        return buckets;
    }

    private static DateTimeOffset Floor(DateTimeOffset at) => Billing.Accounts.UsageRollup.HourOf(at);

    private static DateTimeOffset Ceiling(DateTimeOffset at) => Floor(at) == at ? Floor(at) : Floor(at) + Hour;
}
