using System.Text.Json;
using Billing.Accounts;
using Npgsql;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary>
/// Reads of <c>billing_hold</c> (holds are written only by the payer account's commit statement, HoldStatements), and
/// the refusals: a placement's claims its hold id with a <c>refused</c> row and its billing error
/// (<see cref="ClaimRefusalAsync"/>), which no read of holds returns. (A late capture's refusal claims its usage id,
/// as a usage's does: <see cref="UsageRecordStore.RecordRefusalAsync"/>.)
/// </summary>
public sealed class HoldStore(NpgsqlDataSource dataSource)
{
    private const string Columns = """
        hold_id, seq, scope, account_id, project_id, user_id, model_id, input_tokens, max_output_tokens, input_price_per_million,
        output_price_per_million, amount, currency, ttl_seconds, status, expires_at, created_at, ended_at, usage_id, used_input_tokens,
        used_output_tokens, cost, charged, released, shortfall, late, balance_after, quota_used, shortfall_error_id, billing_error_id
        """;

    /// <summary>
    /// The account's version, holds version and active holds, from one statement (one snapshot); null when there is no
    /// account. The caller pairs them with an account it loaded at the same version.
    /// </summary>
    public async Task<(long Version, long HoldsVersion, ActiveHolds Holds)?> LoadActiveAsync(
        AccountTable table, Guid accountId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT a.version AS account_version, a.holds_seq AS account_holds_seq, h.*
            FROM {table.Accounts} a LEFT JOIN billing_hold h ON h.account_id = a.{table.Key} AND h.status = 'active'
            WHERE a.{table.Key} = $1
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = accountId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        (long, long, List<HoldView>)? found = null;
        while (await reader.ReadAsync(cancellationToken))
        {
            found ??= (reader.Get<long>("account_version"), reader.Get<long>("account_holds_seq"), []);
            if (reader.Get<Guid?>("hold_id") is not null) found.Value.Item3.Add(ReadHold(reader));
        }

        return found is { } f ? (f.Item1, f.Item2, ActiveHolds.Of(f.Item3)) : null;
    }

    /// <summary>
    /// One hold by its key (every capture reads its hold). An equality, not <c>= ANY</c>: PostgreSQL keeps the plan of a
    /// prepared statement, and for <c>= ANY</c> on a small table (a new database) that plan scans every hold, read for
    /// every capture from then on.
    /// </summary>
    public const string ByIdSql = $"SELECT {Columns} FROM billing_hold WHERE hold_id = $1";

    /// <summary>The hold stored under <paramref name="holdId"/>; null when there is none (or its placement was refused).</summary>
    public async Task<HoldView?> GetAsync(Guid holdId, CancellationToken cancellationToken = default) =>
        (await GetClaimAsync(holdId, cancellationToken))?.Hold;

    /// <summary>What is stored under <paramref name="holdId"/>: its hold or its placement's refusal; null when neither.</summary>
    public async Task<HoldClaim?> GetClaimAsync(Guid holdId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand(ByIdSql);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = holdId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadClaim(reader) : null;
    }

    /// <summary>What is stored under each of <paramref name="holdIds"/> (settling after a fault), each read by its key (<see cref="KeyReads"/>).</summary>
    public async Task<Dictionary<Guid, HoldClaim>> GetManyAsync(Guid[] holdIds, CancellationToken cancellationToken = default) =>
        (await KeyReads.ReadByKeysAsync(dataSource, ByIdSql, holdIds, ReadClaim, cancellationToken)).ToDictionary(c => c.Hold?.HoldId ?? c.Refusal!.Request.HoldId);

    /// <summary>The holds <paramref name="accountId"/> pays, newest first; the status filter reads holds as seen at <paramref name="now"/>.</summary>
    public async Task<HoldPage> ListAsync(Guid accountId, HoldQuery query, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT {Columns} FROM billing_hold
            WHERE account_id = $1 AND status <> 'refused' AND ($2::bigint IS NULL OR seq < $2)
              AND CASE $3::text
                    WHEN 'active' THEN status = 'active' AND expires_at > $4
                    WHEN 'expired' THEN status = 'expired' OR (status = 'active' AND expires_at <= $4)
                    WHEN 'any' THEN true
                    ELSE status = $3::text
                  END
            ORDER BY seq DESC
            LIMIT $5
            """);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<Guid> { TypedValue = accountId });
        p.Add(new NpgsqlParameter { Value = (object?)query.Before ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        p.Add(new NpgsqlParameter<string> { TypedValue = query.Status is { } status ? HoldStatements.StatusName(status) : "any" });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
        p.Add(new NpgsqlParameter<int> { TypedValue = query.Limit + 1 });
        var items = new List<(HoldView Hold, long Seq)>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) items.Add((ReadHold(reader).AsSeenAt(now), reader.Get<long>("seq")));
        }

        var page = items.Take(query.Limit).ToArray();
        return new HoldPage(page.Select(i => i.Hold).ToArray(), items.Count > query.Limit ? page[^1].Seq : null);
    }

    /// <summary>Payers with active holds past <paramref name="dueBefore"/>: the accounts whose expiries are not recorded yet.</summary>
    public async Task<List<(AccountKind Kind, Guid AccountId)>> DueAccountsAsync(DateTimeOffset dueBefore, int limit, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT DISTINCT scope, account_id FROM billing_hold
            WHERE status = 'active' AND expires_at <= $1
            LIMIT $2
            """);
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = dueBefore });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        var due = new List<(AccountKind, Guid)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            due.Add((reader.GetString(0) == BillingScopes.Project ? AccountKind.Project : AccountKind.User, reader.GetGuid(1)));
        return due;
    }

    /// <summary>
    /// Whether <paramref name="billingErrorId"/> is the refusal of a late capture of <paramref name="holdId"/> (stored
    /// with its claim of the capture's usage id), not of another usage or hold.
    /// </summary>
    public async Task<bool> IsLateCaptureRefusalAsync(Guid holdId, Guid billingErrorId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT EXISTS (SELECT 1 FROM billing_error
                           WHERE id = $1 AND hold_id = $2 AND usage_id IS NOT NULL AND error_type = 'insufficient_balance')
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = billingErrorId });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = holdId });
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// Claims <paramref name="placement"/>'s hold id for its refusal: in one statement, a <c>refused</c> row under the
    /// hold id (nothing if the id is taken), and only with it the billing error and its events. Returns the billing
    /// error's id, or null when the hold id was taken first (by the hold itself, placed by a copy of this placement,
    /// or by another refusal): the caller reads what is stored (<see cref="GetClaimAsync"/>) and answers with it.
    /// </summary>
    public async Task<Guid?> ClaimRefusalAsync(HoldPlacement placement, string scope, Guid scopeId, string message, object details, DateTimeOffset now,
        Func<Guid, IReadOnlyList<Billing.Events.BillingEventRow>>? events = null, CancellationToken cancellationToken = default)
    {
        var request = placement.Request;
        var billingErrorId = RowIds.New();
        var eventRows = events?.Invoke(billingErrorId) ?? [];
        // ON CONFLICT DO NOTHING waits for a placement of the same id still being committed, and then does nothing if it committed.
        await using var command = dataSource.CreateCommand("""
            WITH claim AS (
                INSERT INTO billing_hold (hold_id, scope, account_id, project_id, user_id, model_id, input_tokens, max_output_tokens,
                                          input_price_per_million, output_price_per_million, amount, currency, ttl_seconds, status,
                                          expires_at, created_at, ended_at, billing_error_id)
                VALUES ($6, $2, $3, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, 'refused', $7, $7, $7, $1)
                ON CONFLICT (hold_id) DO NOTHING
                RETURNING billing_error_id),
            err AS (
                INSERT INTO billing_error (id, scope, scope_id, error_type, message, details, hold_id, created_at)
                SELECT billing_error_id, $2, $3, 'insufficient_balance', $4, $5::jsonb, $6, $7 FROM claim
                RETURNING id),
            ev AS (
                INSERT INTO billing_event (id, type, scope, scope_id, billing_error_id, data, created_at)
                SELECT e.id, e.type, $2, $3, err.id, e.data::jsonb, $7 FROM err, unnest($8::uuid[], $9::text[], $10::text[]) AS e(id, type, data))
            SELECT id FROM err
            """);
        var p = command.Parameters;
        AddRefusalParameters(p, billingErrorId, scope, scopeId, message, details, request.HoldId, now, eventRows);
        p.Add(new NpgsqlParameter { Value = (object?)request.ProjectId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = request.UserId });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = request.ModelId });
        p.Add(new NpgsqlParameter<long> { TypedValue = request.InputTokens });
        p.Add(new NpgsqlParameter<long> { TypedValue = request.MaxOutputTokens });
        p.Add(new NpgsqlParameter<decimal> { TypedValue = placement.InputPricePerMillion });
        p.Add(new NpgsqlParameter<decimal> { TypedValue = placement.OutputPricePerMillion });
        p.Add(new NpgsqlParameter<decimal> { TypedValue = placement.Amount });
        p.Add(new NpgsqlParameter<string> { TypedValue = placement.Currency });
        p.Add(new NpgsqlParameter<int> { TypedValue = request.TtlSeconds ?? HoldRequest.DefaultTtlSeconds });
        return await command.ExecuteScalarAsync(cancellationToken) is Guid id ? id : null;
    }

    /// <summary>$1–$10 of both refusal statements: the billing error, the hold id, the time, and the refusal's events.</summary>
    private static void AddRefusalParameters(NpgsqlParameterCollection p, Guid billingErrorId, string scope, Guid scopeId, string message, object details,
        Guid holdId, DateTimeOffset now, IReadOnlyList<Billing.Events.BillingEventRow> eventRows)
    {
        p.Add(new NpgsqlParameter<Guid> { TypedValue = billingErrorId });
        p.Add(new NpgsqlParameter<string> { TypedValue = scope });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = scopeId });
        p.Add(new NpgsqlParameter<string> { TypedValue = message });
        p.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(details) });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = holdId });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
        // The refusal's events (balance.depleted, billing_error.created): stored with the error or not at all (E1).
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = eventRows.Select(e => e.Id).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = eventRows.Select(e => e.Type).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = eventRows.Select(e => e.Data).ToArray() });
    }

    /// <summary>A row of <c>billing_hold</c> that is a hold (not a refusal).</summary>
    private static HoldView ReadHold(NpgsqlDataReader reader) =>
        ReadClaim(reader).Hold ?? throw new InvalidOperationException($"Hold {reader.Get<Guid>("hold_id")} is a refused placement, not a hold.");

    private static HoldClaim ReadClaim(NpgsqlDataReader reader)
    {
        var holdId = reader.Get<Guid>("hold_id");
        var status = reader.Get<string>("status");
        if (status == HoldStatements.RefusedStatus)
        {
            var request = new HoldRequest(holdId, reader.Get<Guid?>("project_id"), reader.Get<Guid>("user_id"), reader.Get<Guid>("model_id"),
                reader.Get<long>("input_tokens"), reader.Get<long>("max_output_tokens"), reader.Get<int>("ttl_seconds"));
            return new HoldClaim(null, new RefusedHoldPlacement(request, reader.Get<Guid>("billing_error_id")));
        }

        var payer = reader.Get<string>("scope") == BillingScopes.Project ? PayingAccount.Project : PayingAccount.User;
        var accountId = reader.Get<Guid>("account_id");
        var amount = reader.Get<decimal>("amount");
        var currency = reader.Get<string>("currency");
        HoldCaptureReceipt? capture = reader.Get<Guid?>("usage_id") is { } usageId
            ? new HoldCaptureReceipt(usageId, reader.Get<decimal>("cost"), currency, reader.Get<long>("used_input_tokens"), reader.Get<long>("used_output_tokens"),
                payer, accountId, reader.Get<decimal>("balance_after"), reader.Get<decimal>("quota_used"), holdId, amount,
                reader.Get<decimal>("charged"), reader.Get<decimal>("released"), reader.Get<decimal>("shortfall"), reader.Get<bool>("late"),
                reader.Get<Guid?>("shortfall_error_id"))
            : null;
        return new HoldClaim(new HoldView(
            holdId, HoldStatements.ParseStatus(status), payer, accountId, reader.Get<Guid?>("project_id"),
            reader.Get<Guid>("user_id"), reader.Get<Guid>("model_id"), reader.Get<long>("input_tokens"), reader.Get<long>("max_output_tokens"),
            amount, currency, reader.Get<decimal>("input_price_per_million"), reader.Get<decimal>("output_price_per_million"),
            reader.Get<int>("ttl_seconds"), reader.Get<DateTimeOffset>("expires_at"), reader.Get<DateTimeOffset>("created_at"),
            reader.Get<DateTimeOffset?>("ended_at"), capture), null);
    }
}
