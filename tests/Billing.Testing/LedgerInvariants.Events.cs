using System.Data;
using Npgsql;

namespace Billing.Testing;

/// <summary>
/// E1, checked in SQL on one REPEATABLE READ snapshot: an event for every change that should have one, and no event
/// without its change.
/// <list type="bullet">
/// <item>balance.low: for an account with thresholds that was never pro and never paid a hold (its available is its
/// balance; a hold moves available without a history row, and its expiry raises it back), exactly one
/// event per history row after the thresholds were set and per threshold that the row crossed downwards
/// (previous balance_after above it, this one at or below), and none other.</item>
/// <item>balance.recovered: exactly one for each row that took the balance from at or below the highest threshold to
/// above it while the account's latest low/recovered event before it was a low, and none other.</item>
/// <item>Every balance.low / balance.recovered names an existing history row of its account (account_seq) and that
/// row's balance.</item>
/// <item>Every billing error has one billing_error.created; a resolved one has one billing_error.resolved, an open one
/// none; one refused for insufficient balance (a refused usage record, or a hold refused at placement or late
/// capture) has one balance.depleted; and every such event names an existing billing error of its account.</item>
/// <item>hold.expired: exactly one for each expired hold, captured late or not (a late capture that comes before the
/// expiry is recorded writes it), none for a hold captured, voided or active.</item>
/// <item>grant.expired: exactly one for each grant_expired history row (at its seq, naming the grant the row's entry
/// expired and the amount it took), and none other.</item>
/// </list>
/// </summary>
public static partial class LedgerInvariants
{
    public static Task<IReadOnlyList<string>> FindEventViolationsAsync(string connectionString, LedgerScope? scope = null) =>
        RunSqlCheckAsync(connectionString, EventChecks, scope);

    /// <summary>
    /// Runs a check written in SQL on one REPEATABLE READ snapshot: <c>$1</c> the users in scope, <c>$2</c> the
    /// projects (both null: every account); each row it returns is a violation (one text column).
    /// </summary>
    private static async Task<IReadOnlyList<string>> RunSqlCheckAsync(string connectionString, string check, LedgerScope? scope)
    {
        await using var db = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await db.OpenAsync();
        await using var transaction = await db.BeginTransactionAsync(IsolationLevel.RepeatableRead);
        await using var command = new NpgsqlCommand(check, db, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)scope?.Users.ToArray() ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Uuid });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)scope?.Projects.ToArray() ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Uuid });
        var violations = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) violations.Add(reader.GetString(0));
        }

        await transaction.CommitAsync();
        return violations;
    }

    private const string EventChecks = """
        WITH accts AS (
            SELECT 'user'::text AS scope, "user" AS scope_id, is_pro FROM user_billing WHERE $1::uuid[] IS NULL OR "user" = ANY($1)
            UNION ALL
            SELECT 'project', project, is_pro FROM project_billing WHERE $2::uuid[] IS NULL OR project = ANY($2)),
        hist AS (
            SELECT 'user'::text AS scope, "user" AS scope_id, seq, balance_after, reason,
                   COALESCE(lag(balance_after) OVER (PARTITION BY "user" ORDER BY seq), 0) AS prev
            FROM user_billing_history WHERE $1::uuid[] IS NULL OR "user" = ANY($1)
            UNION ALL
            SELECT 'project', project, seq, balance_after, reason,
                   COALESCE(lag(balance_after) OVER (PARTITION BY project ORDER BY seq), 0)
            FROM project_billing_history WHERE $2::uuid[] IS NULL OR project = ANY($2)),
        ev AS (SELECT e.* FROM billing_event e JOIN accts a ON a.scope = e.scope AND a.scope_id = e.scope_id),
        alerted AS (
            SELECT a.scope, a.scope_id, al.thresholds, al.set_at_version, (SELECT max(t) FROM unnest(al.thresholds) t) AS highest
            FROM accts a JOIN account_alert al ON al.scope = a.scope AND al.scope_id = a.scope_id
            WHERE NOT a.is_pro
              AND NOT EXISTS (SELECT 1 FROM hist h WHERE h.scope = a.scope AND h.scope_id = a.scope_id AND h.reason = 'plan_change')
              -- Holds: a placement's low and an expiry's recovered are judged on available, which no history row shows.
              AND NOT EXISTS (SELECT 1 FROM billing_hold bh WHERE bh.scope = a.scope AND bh.account_id = a.scope_id AND bh.status <> 'refused')),
        expected_low AS (
            SELECT h.scope, h.scope_id, h.seq, t AS threshold
            FROM hist h JOIN alerted al ON al.scope = h.scope AND al.scope_id = h.scope_id, unnest(al.thresholds) t
            WHERE h.seq > al.set_at_version AND h.prev > t AND h.balance_after <= t),
        actual_low AS (
            SELECT e.scope, e.scope_id, e.account_seq AS seq, e.threshold, count(*) AS n
            FROM ev e JOIN alerted al ON al.scope = e.scope AND al.scope_id = e.scope_id
            WHERE e.type = 'balance.low' AND e.account_seq > al.set_at_version
            GROUP BY 1, 2, 3, 4),
        expected_rec AS (
            SELECT h.scope, h.scope_id, h.seq
            FROM hist h JOIN alerted al ON al.scope = h.scope AND al.scope_id = h.scope_id
            WHERE h.seq > al.set_at_version AND h.prev <= al.highest AND h.balance_after > al.highest
              AND (SELECT e.type FROM ev e
                   WHERE e.scope = h.scope AND e.scope_id = h.scope_id AND e.type IN ('balance.low', 'balance.recovered') AND e.account_seq < h.seq
                   ORDER BY e.account_seq DESC LIMIT 1) = 'balance.low'),
        actual_rec AS (
            SELECT e.scope, e.scope_id, e.account_seq AS seq, count(*) AS n
            FROM ev e JOIN alerted al ON al.scope = e.scope AND al.scope_id = e.scope_id
            WHERE e.type = 'balance.recovered' AND e.account_seq > al.set_at_version
            GROUP BY 1, 2, 3),
        -- Joined, not correlated: a long bank run has tens of thousands of billing errors, usage records and events.
        refused_errors AS (SELECT DISTINCT billing_error_id FROM usage_record WHERE outcome = 'refused' AND billing_error_id IS NOT NULL),
        hold_expired_events AS (SELECT (data->>'holdId')::uuid AS hold_id, count(*) AS n FROM ev WHERE type = 'hold.expired' GROUP BY 1),
        grant_expired_events AS (SELECT scope, scope_id, account_seq, count(*) AS n FROM ev WHERE type = 'grant.expired' GROUP BY 1, 2, 3),
        errs AS (
            SELECT b.id, b.scope, b.scope_id, b.resolved,
                   (SELECT count(*) FROM billing_event e WHERE e.billing_error_id = b.id AND e.type = 'billing_error.created'
                        AND e.scope = b.scope AND e.scope_id = b.scope_id) AS created,
                   (SELECT count(*) FROM billing_event e WHERE e.billing_error_id = b.id AND e.type = 'billing_error.resolved'
                        AND e.scope = b.scope AND e.scope_id = b.scope_id) AS resolved_events,
                   (SELECT count(*) FROM billing_event e WHERE e.billing_error_id = b.id AND e.type = 'balance.depleted'
                        AND e.scope = b.scope AND e.scope_id = b.scope_id) AS depleted,
                   r.billing_error_id IS NOT NULL OR (b.error_type = 'insufficient_balance' AND b.hold_id IS NOT NULL) AS refused
            FROM billing_error b JOIN accts a ON a.scope = b.scope AND a.scope_id = b.scope_id
            LEFT JOIN refused_errors r ON r.billing_error_id = b.id)
        SELECT format('E1 %s %s: %s balance.low event(s) for threshold %s at seq %s where %s expected',
                      COALESCE(x.scope, y.scope), COALESCE(x.scope_id, y.scope_id), COALESCE(y.n, 0), COALESCE(x.threshold, y.threshold),
                      COALESCE(x.seq, y.seq), CASE WHEN x.seq IS NULL THEN 0 ELSE 1 END)
        FROM expected_low x FULL JOIN actual_low y
          ON x.scope = y.scope AND x.scope_id = y.scope_id AND x.seq = y.seq AND x.threshold = y.threshold
        WHERE COALESCE(y.n, 0) <> CASE WHEN x.seq IS NULL THEN 0 ELSE 1 END
        UNION ALL
        SELECT format('E1 %s %s: %s balance.recovered event(s) at seq %s where %s expected',
                      COALESCE(x.scope, y.scope), COALESCE(x.scope_id, y.scope_id), COALESCE(y.n, 0), COALESCE(x.seq, y.seq),
                      CASE WHEN x.seq IS NULL THEN 0 ELSE 1 END)
        FROM expected_rec x FULL JOIN actual_rec y ON x.scope = y.scope AND x.scope_id = y.scope_id AND x.seq = y.seq
        WHERE COALESCE(y.n, 0) <> CASE WHEN x.seq IS NULL THEN 0 ELSE 1 END
        UNION ALL
        SELECT format('E1 %s %s: %s event %s names seq %s, which is not a history row with its balance %s',
                      e.scope, e.scope_id, e.type, e.id, e.account_seq, e.data->>'balance')
        FROM ev e LEFT JOIN hist h ON h.scope = e.scope AND h.scope_id = e.scope_id AND h.seq = e.account_seq
        WHERE e.type IN ('balance.low', 'balance.recovered') AND (h.seq IS NULL OR (e.data->>'balance')::numeric <> h.balance_after)
        UNION ALL
        SELECT format('E1 %s %s: billing error %s (resolved %s, refused usage %s) has %s created, %s resolved, %s depleted event(s)',
                      scope, scope_id, id, resolved, refused, created, resolved_events, depleted)
        FROM errs
        WHERE created <> 1 OR resolved_events <> CASE WHEN resolved THEN 1 ELSE 0 END OR depleted <> CASE WHEN refused THEN 1 ELSE 0 END
        UNION ALL
        SELECT format('E1 %s %s: hold %s (%s, captured late %s) has %s hold.expired event(s)', h.scope, h.account_id, h.hold_id, h.status,
                      h.usage_id IS NOT NULL, COALESCE(x.n, 0))
        FROM billing_hold h JOIN accts a ON a.scope = h.scope AND a.scope_id = h.account_id
        LEFT JOIN hold_expired_events x ON x.hold_id = h.hold_id
        WHERE COALESCE(x.n, 0) <> CASE WHEN h.status = 'expired' THEN 1 ELSE 0 END
        UNION ALL
        SELECT format('E1 %s %s: grant_expired row at seq %s has %s grant.expired event(s)', h.scope, h.scope_id, h.seq, COALESCE(x.n, 0))
        FROM hist h
        LEFT JOIN grant_expired_events x ON x.scope = h.scope AND x.scope_id = h.scope_id AND x.account_seq = h.seq
        WHERE h.reason = 'grant_expired' AND COALESCE(x.n, 0) <> 1
        UNION ALL
        SELECT format('E1 %s %s: grant.expired event %s (grant %s, amount %s) names seq %s, which is not that grant''s grant_expired row',
                      e.scope, e.scope_id, e.id, e.data->>'grantId', e.data->>'amount', e.account_seq)
        FROM ev e
        WHERE e.type = 'grant.expired'
          AND NOT EXISTS (
              SELECT 1 FROM hist h JOIN credit_grant_movement g ON g.scope = h.scope AND g.account_id = h.scope_id AND g.seq = h.seq
              WHERE h.scope = e.scope AND h.scope_id = e.scope_id AND h.seq = e.account_seq AND h.reason = 'grant_expired'
                AND g.grant_id = (e.data->>'grantId')::uuid AND g.amount = -(e.data->>'amount')::numeric)
        UNION ALL
        SELECT format('E1 %s %s: %s event %s names billing error %s, which this account does not have', e.scope, e.scope_id, e.type, e.id, e.billing_error_id)
        FROM ev e
        WHERE e.type IN ('billing_error.created', 'billing_error.resolved', 'balance.depleted')
          AND NOT EXISTS (SELECT 1 FROM errs b WHERE b.id = e.billing_error_id AND b.scope = e.scope AND b.scope_id = e.scope_id)
        """;
}
