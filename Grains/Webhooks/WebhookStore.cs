using Billing.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Billing.Webhooks;

/// <summary>
/// A delivery a dispatcher has claimed: the event, the endpoint, which attempt a send now would be, which claim this is
/// (the claim's identity when its outcome is recorded), and how many earlier claims ended with no outcome recorded
/// (their silo died with them).
/// </summary>
public sealed record ClaimedDelivery(Guid EndpointId, Guid EventId, int Attempt, string Url, string Secret, string Type, DateTimeOffset CreatedAt, string Data,
    int Claim, int LostClaims);

/// <summary>
/// Webhook endpoints and deliveries. Dispatchers on any number of silos share the work through the database:
/// fan-out and claims lock only outbox rows (<c>webhook_endpoint</c>, <c>webhook_delivery</c>) with
/// <c>FOR UPDATE SKIP LOCKED</c>, never accounts; a claim is a lease, so a dead silo's claims pass to others. Times
/// are the database's, one clock for every silo.
/// </summary>
public sealed class WebhookStore(NpgsqlDataSource dataSource)
{
    private const string EndpointColumns = "id, url, events, enabled, created_at";

    /// <summary>
    /// Creates an endpoint that receives the events committed from now on; when <paramref name="id"/> exists already,
    /// answers that endpoint as stored, with its own secret, and false.
    /// </summary>
    public async Task<(WebhookEndpointView Endpoint, bool Created)> CreateAsync(Guid id, string url, string[] events, string secret, CancellationToken cancellationToken = default)
    {
        // Start below the oldest transaction running now: every event not yet visible is after the cursor.
        await using var command = dataSource.CreateCommand($"""
            WITH inserted AS (
                INSERT INTO webhook_endpoint (id, url, events, secret, cursor_txid, cursor_seq, created_at)
                VALUES ($1, $2, $3, $4, pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1, 9223372036854775807, now())
                ON CONFLICT (id) DO NOTHING
                RETURNING {EndpointColumns}, secret, true AS created)
            SELECT * FROM inserted
            UNION ALL
            SELECT {EndpointColumns}, secret, false FROM webhook_endpoint WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM inserted)
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = url });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = events });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = secret });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
            throw new BillingUnavailableException($"Webhook endpoint {id} was being created or deleted at the same time; retry with the same id.");
        return (ReadEndpoint(reader) with { Secret = reader.Get<string>("secret") }, reader.Get<bool>("created"));
    }

    public async Task<WebhookEndpointView[]> ListAsync(CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"SELECT {EndpointColumns} FROM webhook_endpoint ORDER BY created_at, id");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var items = new List<WebhookEndpointView>();
        while (await reader.ReadAsync(cancellationToken)) items.Add(ReadEndpoint(reader));
        return items.ToArray();
    }

    public async Task<bool> DeleteAsync(Guid id, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("DELETE FROM webhook_endpoint WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    /// <summary>
    /// Turns new outbox events into deliveries for every enabled endpoint not being fanned out by another silo, and
    /// moves each endpoint's cursor past what it scanned (matching its events or not). Returns the events scanned.
    /// </summary>
    public async Task<int> FanOutAsync(int limit, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin),
            ep AS (
                SELECT id, events, cursor_txid, cursor_seq FROM webhook_endpoint WHERE enabled
                FOR UPDATE SKIP LOCKED),
            scanned AS (
                SELECT ep.id AS endpoint_id, ep.events, e.id AS event_id, e.type, e.txid, e.seq, e.created_at
                FROM ep CROSS JOIN LATERAL (
                    SELECT b.id, b.type, b.txid, b.seq, b.created_at FROM billing_event b, snap
                    WHERE b.txid < snap.xmin AND (b.txid, b.seq) > (ep.cursor_txid, ep.cursor_seq)
                    ORDER BY b.txid, b.seq
                    LIMIT $1) e),
            ins AS (
                INSERT INTO webhook_delivery (endpoint_id, event_id, event_created_at, next_attempt_at)
                SELECT endpoint_id, event_id, created_at, now() FROM scanned WHERE type = ANY(events)
                ON CONFLICT DO NOTHING),
            last AS (
                SELECT DISTINCT ON (endpoint_id) endpoint_id, txid, seq FROM scanned ORDER BY endpoint_id, txid DESC, seq DESC),
            moved AS (
                UPDATE webhook_endpoint w SET cursor_txid = last.txid, cursor_seq = last.seq
                FROM last WHERE w.id = last.endpoint_id)
            SELECT count(*)::int FROM scanned
            """);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        return (int)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// Claims up to <paramref name="limit"/> due deliveries of enabled endpoints for <paramref name="lease"/>, oldest
    /// first, but at most <paramref name="perEndpoint"/> in flight per endpoint counting the claimant's
    /// <paramref name="sending"/> (one entry per send in flight, by endpoint): an endpoint that never answers keeps only
    /// its own slots busy. Rows another silo is claiming right now are skipped, rows whose lease ran out (a silo that
    /// died) are taken again. A claim is not an attempt: the attempts count the outcomes recorded (migration 0018).
    /// </summary>
    public async Task<List<ClaimedDelivery>> ClaimAsync(string claimant, TimeSpan lease, int limit, int perEndpoint, IReadOnlyCollection<Guid> sending,
        CancellationToken cancellationToken = default)
    {
        // Each endpoint's oldest due rows through webhook_delivery_endpoint_due_idx (migration 0017): the work is per
        // endpoint, not per due row, however many an unanswering endpoint has piled up.
        await using var command = dataSource.CreateCommand("""
            WITH in_flight AS (
                SELECT endpoint_id, count(*)::int AS sends FROM unnest($4::uuid[]) AS s(endpoint_id) GROUP BY endpoint_id),
            candidate AS (
                SELECT c.endpoint_id, c.event_id, c.next_attempt_at
                FROM webhook_endpoint w
                LEFT JOIN in_flight f ON f.endpoint_id = w.id
                CROSS JOIN LATERAL (
                    SELECT d.endpoint_id, d.event_id, d.next_attempt_at FROM webhook_delivery d
                    WHERE d.endpoint_id = w.id AND d.status = 'pending' AND d.next_attempt_at <= now()
                      AND (d.claimed_until IS NULL OR d.claimed_until < now())
                    ORDER BY d.next_attempt_at
                    LIMIT greatest($5 - coalesce(f.sends, 0), 0)
                    -- Locked here, under each endpoint's limit: rows another silo is claiming are passed over for the
                    -- next ones, not counted against this claim (the conditions are checked again on the locked row).
                    FOR UPDATE OF d SKIP LOCKED) c
                WHERE w.enabled
                ORDER BY c.next_attempt_at
                LIMIT $1),
            due AS (SELECT endpoint_id, event_id FROM candidate)
            UPDATE webhook_delivery d
            SET claimed_by = $2, claimed_until = now() + make_interval(secs => $3), claims = d.claims + 1
            FROM due, webhook_endpoint w, billing_event e
            WHERE d.endpoint_id = due.endpoint_id AND d.event_id = due.event_id AND w.id = d.endpoint_id AND e.id = d.event_id
            RETURNING d.endpoint_id, d.event_id, d.attempts + 1 AS attempt, w.url, w.secret, e.type, e.created_at, e.data::text AS data,
                d.claims AS claim, greatest(d.claims - 1 - d.attempts, 0) AS lost_claims
            """);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = claimant });
        command.Parameters.Add(new NpgsqlParameter<double> { TypedValue = lease.TotalSeconds });
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = sending.ToArray() });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = perEndpoint });
        var claimed = new List<ClaimedDelivery>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            claimed.Add(new ClaimedDelivery(reader.Get<Guid>("endpoint_id"), reader.Get<Guid>("event_id"), reader.Get<int>("attempt"),
                reader.Get<string>("url"), reader.Get<string>("secret"), reader.Get<string>("type"), reader.Get<DateTimeOffset>("created_at"), reader.Get<string>("data"),
                reader.Get<int>("claim"), reader.Get<int>("lost_claims")));
        }

        return claimed;
    }

    /// <summary>
    /// Records a claim's outcome, if the claim is still this one's (same claimant, same claim): delivered; or
    /// retried after <paramref name="retryAfter"/>; or failed for good (<paramref name="retryAfter"/> null). A
    /// <paramref name="gone"/> answer (410) also disables the endpoint. An outcome <paramref name="sent"/> counts as an
    /// attempt; a delivery given up without a send does not.
    /// </summary>
    public async Task CompleteAsync(ClaimedDelivery delivery, string claimant, bool delivered, int? httpStatus, string? error, TimeSpan? retryAfter, bool gone,
        CancellationToken cancellationToken = default, bool sent = true)
    {
        await using var command = dataSource.CreateCommand("""
            WITH upd AS (
                UPDATE webhook_delivery
                SET status = CASE WHEN $3 THEN 'delivered' WHEN $6::double precision IS NULL THEN 'failed' ELSE 'pending' END,
                    delivered_at = CASE WHEN $3 THEN now() END,
                    next_attempt_at = CASE WHEN $6::double precision IS NULL THEN next_attempt_at ELSE now() + make_interval(secs => $6) END,
                    claimed_by = NULL, claimed_until = NULL, last_status = $4, last_error = $5,
                    attempts = attempts + CASE WHEN $10 THEN 1 ELSE 0 END
                WHERE endpoint_id = $1 AND event_id = $2 AND claimed_by = $8 AND claims = $9
                RETURNING endpoint_id)
            UPDATE webhook_endpoint SET enabled = false, disabled_reason = '410 Gone answered at ' || now()::text
            FROM upd WHERE $7 AND webhook_endpoint.id = upd.endpoint_id
            """);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<Guid> { TypedValue = delivery.EndpointId });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = delivery.EventId });
        p.Add(new NpgsqlParameter<bool> { TypedValue = delivered });
        p.Add(new NpgsqlParameter { Value = (object?)httpStatus ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer });
        p.Add(new NpgsqlParameter { Value = (object?)error ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        p.Add(new NpgsqlParameter { Value = (object?)retryAfter?.TotalSeconds ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double });
        p.Add(new NpgsqlParameter<bool> { TypedValue = gone });
        p.Add(new NpgsqlParameter<string> { TypedValue = claimant });
        p.Add(new NpgsqlParameter<int> { TypedValue = delivery.Claim });
        p.Add(new NpgsqlParameter<bool> { TypedValue = sent });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Gives a claim back unused, if it is still this one's (a silo stopping with sends in flight): another silo may
    /// claim the delivery at once instead of after the lease, and the claim counts neither as an attempt nor as lost.
    /// </summary>
    public async Task ReleaseAsync(ClaimedDelivery delivery, string claimant, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE webhook_delivery SET claimed_by = NULL, claimed_until = NULL, claims = claims - 1
            WHERE endpoint_id = $1 AND event_id = $2 AND claimed_by = $3 AND claims = $4 AND status = 'pending'
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = delivery.EndpointId });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = delivery.EventId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = claimant });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = delivery.Claim });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Deliveries still to make (due or waiting for a retry) to enabled endpoints.</summary>
    public async Task<long> BacklogAsync(CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT count(*) FROM webhook_delivery d JOIN webhook_endpoint w ON w.id = d.endpoint_id AND w.enabled WHERE d.status = 'pending'
            """);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static WebhookEndpointView ReadEndpoint(NpgsqlDataReader reader) => new(
        reader.Get<Guid>("id"), reader.Get<string>("url"), reader.Get<string[]>("events"), null, reader.Get<bool>("enabled"), reader.Get<DateTimeOffset>("created_at"));
}
