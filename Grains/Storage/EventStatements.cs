using Billing.Events;
using Npgsql;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary>
/// The outbox's part of the account commit statement (<see cref="LedgerStatements"/>): the events decided with the
/// batch's rows, and a <c>billing_error.resolved</c> for each error the statement resolves. Both are gated on the
/// account update, so an event is written exactly when its change is (E1).
/// </summary>
public static class EventStatements
{
    /// <summary>The parts; the resolved errors (CTE <c>resolved</c>) carry each account's time and event figures.</summary>
    public static (string Name, string Sql)[] CommitParts(SqlParameters<LedgerCommitGroup> p)
    {
        var inserted = new ArrayInsert<LedgerCommitGroup, BillingEventRow>(p, "billing_event", "event", g => g.Rows("events", c => c.Events?.Rows))
            .Column("id", "uuid", e => e.Id)
            .Column("type", "text", e => e.Type)
            .Column("scope", "text", e => e.Scope)
            .Column("scope_id", "uuid", e => e.ScopeId)
            .Column("account_seq", "bigint", e => e.AccountSeq)
            .Column("billing_error_id", "uuid", e => e.BillingErrorId)
            .Column("threshold", "numeric", e => e.Threshold)
            .Column("data", "text", e => e.Data, cast: "jsonb")
            .Column("created_at", "timestamptz", e => e.CreatedAt.UtcDateTime)
            .Sql(gate: "acct");
        var resolvedEvents = $"""
            INSERT INTO billing_event (id, type, scope, scope_id, billing_error_id, data, created_at)
            SELECT gen_random_uuid(), '{BillingEventTypes.BillingErrorResolved}', r.scope, r.scope_id, r.id,
                   jsonb_build_object('scope', r.scope, 'scopeId', r.scope_id, 'available', r.available, 'balance', r.balance,
                                      'currency', r.currency, 'billingErrorId', r.id, 'errorType', r.error_type),
                   r.now
            FROM resolved r
            """;
        return [("events", inserted), ("resolved_events", resolvedEvents)];
    }
}

/// <summary>Alert thresholds and reading the outbox.</summary>
public sealed class EventStore(NpgsqlDataSource dataSource)
{
    /// <summary>The account's thresholds (empty when none) and whether its latest low/recovered event is a low.</summary>
    public async Task<(decimal[] Thresholds, bool LowPending)> LoadAlertsAsync(string scope, Guid accountId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT (SELECT thresholds FROM account_alert WHERE scope = $1 AND scope_id = $2) AS thresholds,
                   (SELECT type = '{BillingEventTypes.BalanceLow}' FROM billing_event
                    WHERE scope = $1 AND scope_id = $2 AND type IN ('{BillingEventTypes.BalanceLow}', '{BillingEventTypes.BalanceRecovered}')
                    ORDER BY txid DESC, seq DESC LIMIT 1) AS low_pending
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = scope });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = accountId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.Get<decimal[]?>("thresholds") ?? [], reader.Get<bool?>("low_pending") ?? false);
    }

    public async Task SaveAlertsAsync(string scope, Guid accountId, decimal[] thresholds, long accountVersion, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO account_alert (scope, scope_id, thresholds, set_at_version, updated_at) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (scope, scope_id) DO UPDATE SET thresholds = EXCLUDED.thresholds, set_at_version = EXCLUDED.set_at_version, updated_at = EXCLUDED.updated_at
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = scope });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = accountId });
        command.Parameters.Add(new NpgsqlParameter<decimal[]> { TypedValue = thresholds });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = accountVersion });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Events after the cursor, oldest first. Only events below the oldest transaction still running are shown, and
    /// the order is (transaction id, seq): an event committed later can never appear before a cursor already passed.
    /// </summary>
    public async Task<BillingEventPage> ListAsync(BillingEventQuery query, EventCursor after, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT txid, seq, id, type, created_at, data::text AS data FROM billing_event
            WHERE txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
              AND (txid, seq) > ($1, $2)
              AND ($3::text[] IS NULL OR type = ANY($3))
              AND ($4::text IS NULL OR scope = $4)
              AND ($5::uuid IS NULL OR scope_id = $5)
            ORDER BY txid, seq
            LIMIT $6
            """);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<long> { TypedValue = after.TransactionId });
        p.Add(new NpgsqlParameter<long> { TypedValue = after.Seq });
        p.Add(new NpgsqlParameter { Value = (object?)query.Types ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        p.Add(new NpgsqlParameter { Value = (object?)query.Scope ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        p.Add(new NpgsqlParameter { Value = (object?)query.ScopeId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        p.Add(new NpgsqlParameter<int> { TypedValue = query.Limit });
        var items = new List<BillingEventView>();
        var last = after;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            items.Add(new BillingEventView(reader.Get<Guid>("id"), reader.Get<string>("type"), reader.Get<DateTimeOffset>("created_at"), reader.Get<string>("data")));
            last = new EventCursor(reader.Get<long>("txid"), reader.Get<long>("seq"));
        }

        return new BillingEventPage(items.ToArray(), last.ToString());
    }
}

/// <summary>A position in the outbox: (transaction id, seq), written <c>txid.seq</c>.</summary>
public readonly record struct EventCursor(long TransactionId, long Seq)
{
    public static readonly EventCursor Start = new(0, 0);

    public override string ToString() => $"{TransactionId}.{Seq}";

    public static bool TryParse(string? raw, out EventCursor cursor)
    {
        cursor = Start;
        if (string.IsNullOrEmpty(raw)) return true;
        var parts = raw.Split('.');
        if (parts.Length == 2 && long.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var txid)
            && long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seq))
        {
            cursor = new EventCursor(txid, seq);
            return true;
        }

        return false;
    }
}
