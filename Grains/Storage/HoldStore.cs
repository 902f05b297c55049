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
public sealed class HoldStore(NpgsqlDataSource dataSource) : IAsyncDisposable
{
    private readonly ClaimWriter<HoldRefusal> placementRefusals = new(dataSource, r => r.Placement.Request.HoldId, StorePlacementRefusalsAsync);

    public ValueTask DisposeAsync() => placementRefusals.DisposeAsync();

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
    /// Claims <paramref name="placement"/>'s hold id for its refusal: a <c>refused</c> row under the hold id (nothing if
    /// the id is taken), and only with it the billing error and its events, in one statement shared with the other
    /// placements refused at that moment (<see cref="ClaimWriter{TClaim}"/>). Returns the billing error's id, or null
    /// when the hold id was taken first (by the hold itself, placed by a copy of this placement, or by another refusal):
    /// the caller reads what is stored (<see cref="GetClaimAsync"/>) and answers with it.
    /// </summary>
    public async Task<Guid?> ClaimRefusalAsync(HoldPlacement placement, string scope, Guid scopeId, string message, object details, DateTimeOffset now,
        Func<Guid, IReadOnlyList<Billing.Events.BillingEventRow>>? events = null, CancellationToken cancellationToken = default)
    {
        var billingErrorId = RowIds.New();
        var refusal = new HoldRefusal(placement, scope, scopeId, message, JsonSerializer.Serialize(details), now, billingErrorId,
            events?.Invoke(billingErrorId) ?? []);
        return await placementRefusals.ClaimAsync(refusal).WaitAsync(cancellationToken) ? billingErrorId : null;
    }

    /// <summary>Stores refused placements (ClaimWriter): each one whose hold id it claims, with its error and events; returns those ids.</summary>
    private static async Task<HashSet<Guid>> StorePlacementRefusalsAsync(HoldRefusal[] refusals, NpgsqlConnection connection)
    {
        // Rows in the order given (ORDER BY ord: hold-id order), each refusal's events in theirs. ON CONFLICT DO NOTHING
        // waits for a placement of the same id still being committed, and then does nothing if it committed.
        await using var command = new NpgsqlCommand("""
            WITH input AS (
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::bigint[], $8::bigint[],
                                     $9::numeric[], $10::numeric[], $11::numeric[], $12::text[], $13::integer[], $14::timestamptz[],
                                     $15::uuid[], $16::text[], $17::text[]) WITH ORDINALITY
                    AS i(hold_id, scope, account_id, project_id, user_id, model_id, input_tokens, max_output_tokens,
                         input_price_per_million, output_price_per_million, amount, currency, ttl_seconds, at, billing_error_id, message, details, ord)),
            claim AS (
                INSERT INTO billing_hold (hold_id, scope, account_id, project_id, user_id, model_id, input_tokens, max_output_tokens,
                                          input_price_per_million, output_price_per_million, amount, currency, ttl_seconds, status,
                                          expires_at, created_at, ended_at, billing_error_id)
                SELECT hold_id, scope, account_id, project_id, user_id, model_id, input_tokens, max_output_tokens,
                       input_price_per_million, output_price_per_million, amount, currency, ttl_seconds, 'refused', at, at, at, billing_error_id
                FROM input ORDER BY ord
                ON CONFLICT (hold_id) DO NOTHING
                RETURNING hold_id),
            err AS (
                INSERT INTO billing_error (id, scope, scope_id, error_type, message, details, hold_id, created_at)
                SELECT i.billing_error_id, i.scope, i.account_id, 'insufficient_balance', i.message, i.details::jsonb, i.hold_id, i.at
                FROM input i JOIN claim USING (hold_id)
                ORDER BY i.ord),
            ev AS (
                INSERT INTO billing_event (id, type, scope, scope_id, billing_error_id, data, created_at)
                SELECT e.id, e.type, i.scope, i.account_id, i.billing_error_id, e.data::jsonb, i.at
                FROM unnest($18::uuid[], $19::uuid[], $20::text[], $21::text[]) WITH ORDINALITY AS e(hold_id, id, type, data, ord)
                JOIN input i USING (hold_id) JOIN claim USING (hold_id)
                ORDER BY e.ord)
            SELECT hold_id FROM claim
            """, connection);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.Placement.Request.HoldId).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Scope).ToArray() });
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.ScopeId).ToArray() });
        p.Add(new NpgsqlParameter { Value = refusals.Select(r => r.Placement.Request.ProjectId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.Placement.Request.UserId).ToArray() });
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.Placement.Request.ModelId).ToArray() });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = refusals.Select(r => r.Placement.Request.InputTokens).ToArray() });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = refusals.Select(r => r.Placement.Request.MaxOutputTokens).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = refusals.Select(r => r.Placement.InputPricePerMillion).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = refusals.Select(r => r.Placement.OutputPricePerMillion).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = refusals.Select(r => r.Placement.Amount).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Placement.Currency).ToArray() });
        p.Add(new NpgsqlParameter<int[]> { TypedValue = refusals.Select(r => r.Placement.Request.TtlSeconds ?? HoldRequest.DefaultTtlSeconds).ToArray() });
        p.Add(new NpgsqlParameter<DateTime[]> { TypedValue = refusals.Select(r => r.At.UtcDateTime).ToArray(), DataTypeName = "timestamptz[]" });
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.BillingErrorId).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Message).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Details).ToArray() });
        ClaimStatements.AddEvents(p, refusals.SelectMany(r => r.Events.Select(e => (r.Placement.Request.HoldId, e))));
        return await ClaimStatements.ClaimedAsync(command);
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

/// <summary>A refused placement as stored: a <c>refused</c> row under its hold id, its one billing error (of <see cref="Scope"/>) and that error's events.</summary>
internal sealed record HoldRefusal(
    HoldPlacement Placement, string Scope, Guid ScopeId, string Message, string Details, DateTimeOffset At, Guid BillingErrorId,
    IReadOnlyList<Billing.Events.BillingEventRow> Events);
