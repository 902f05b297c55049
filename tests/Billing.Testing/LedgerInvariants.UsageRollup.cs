namespace Billing.Testing;

/// <summary>
/// The usage summary's rollup, checked in SQL on one REPEATABLE READ snapshot: for every account, hour, model and
/// currency, <c>usage_hourly</c> plus the account's open hour (<c>usage_hour_*</c>) add up to exactly the sums of its
/// usage history rows (a project's <c>ai_usage</c>; a user's <c>ai_usage_personal</c> and <c>ai_usage_user_fallback</c>).
/// </summary>
public static partial class LedgerInvariants
{
    /// <summary>
    /// For a user's ledger written by SQL (tests and the bench write history in the past, which the grains never do): the
    /// rollup the grains would have left for its usage rows, every hour closed. <c>$1</c> = the user.
    /// </summary>
    public const string RollUpUserUsageRowsSql = """
        INSERT INTO usage_hourly (scope, account, hour, model_id, currency, requests, input_tokens, output_tokens, cost)
        SELECT 'user', "user", date_bin('1 hour', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
               coalesce(model_id, '00000000-0000-0000-0000-000000000000'), currency,
               count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), sum(quota_used - amount)
        FROM user_billing_history WHERE "user" = $1 AND reason IN ('ai_usage_personal', 'ai_usage_user_fallback')
        GROUP BY 2, 3, 4, 5
        """;

    public static Task<IReadOnlyList<string>> FindUsageRollupViolationsAsync(string connectionString, LedgerScope? scope = null) =>
        RunSqlCheckAsync(connectionString, UsageRollupCheck, scope);

    private const string UsageRollupCheck = """
        WITH rows AS (
            SELECT 'user'::text AS scope, "user" AS account, date_bin('1 hour', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS hour,
                   coalesce(model_id, '00000000-0000-0000-0000-000000000000') AS model_id, currency,
                   count(*) AS requests, coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
                   sum(quota_used - amount) AS cost
            FROM user_billing_history
            WHERE reason IN ('ai_usage_personal', 'ai_usage_user_fallback') AND ($1::uuid[] IS NULL OR "user" = ANY($1))
            GROUP BY 1, 2, 3, 4, 5
            UNION ALL
            SELECT 'project', project, date_bin('1 hour', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                   coalesce(model_id, '00000000-0000-0000-0000-000000000000'), currency,
                   count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), sum(quota_used - amount)
            FROM project_billing_history
            WHERE reason = 'ai_usage' AND ($2::uuid[] IS NULL OR project = ANY($2))
            GROUP BY 1, 2, 3, 4, 5),
        rollup AS (
            SELECT scope, account, hour, model_id, currency, sum(requests) AS requests, sum(input_tokens) AS input_tokens,
                   sum(output_tokens) AS output_tokens, sum(cost) AS cost
            FROM (
                SELECT scope, account, hour, model_id, currency, requests, input_tokens, output_tokens, cost
                FROM usage_hourly
                WHERE (scope = 'user' AND ($1::uuid[] IS NULL OR account = ANY($1))) OR (scope = 'project' AND ($2::uuid[] IS NULL OR account = ANY($2)))
                UNION ALL
                SELECT 'user', "user", usage_hour, usage_hour_model_id, usage_hour_currency, usage_hour_requests,
                       usage_hour_input_tokens, usage_hour_output_tokens, usage_hour_cost
                FROM user_billing WHERE usage_hour IS NOT NULL AND ($1::uuid[] IS NULL OR "user" = ANY($1))
                UNION ALL
                SELECT 'project', project, usage_hour, usage_hour_model_id, usage_hour_currency, usage_hour_requests,
                       usage_hour_input_tokens, usage_hour_output_tokens, usage_hour_cost
                FROM project_billing WHERE usage_hour IS NOT NULL AND ($2::uuid[] IS NULL OR project = ANY($2))) parts
            GROUP BY 1, 2, 3, 4, 5)
        SELECT format('usage rollup %s %s, hour %s, model %s, %s: rollup %s requests, %s in, %s out, cost %s; history rows %s requests, %s in, %s out, cost %s',
                      coalesce(r.scope, h.scope), coalesce(r.account, h.account), coalesce(r.hour, h.hour), coalesce(r.model_id, h.model_id),
                      coalesce(r.currency, h.currency), r.requests, r.input_tokens, r.output_tokens, r.cost,
                      h.requests, h.input_tokens, h.output_tokens, h.cost)
        FROM rollup r FULL JOIN rows h
          ON h.scope = r.scope AND h.account = r.account AND h.hour = r.hour AND h.model_id = r.model_id AND h.currency = r.currency
        WHERE r.requests IS DISTINCT FROM h.requests OR r.input_tokens IS DISTINCT FROM h.input_tokens
           OR r.output_tokens IS DISTINCT FROM h.output_tokens OR r.cost IS DISTINCT FROM h.cost
        """;
}
