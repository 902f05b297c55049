using System.Text.Json;
using Billing.Events;
using Npgsql;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary>
/// <c>usage_record</c>: the one answer given for each usage id, whichever account charged it or whether it was
/// refused. Its primary key is the at-most-once guarantee (I3); a refusal and its billing error (I5) are one statement,
/// shared with the other refusals of the moment (<see cref="ClaimWriter{TClaim}"/>).
/// </summary>
public sealed class UsageRecordStore(NpgsqlDataSource dataSource) : IAsyncDisposable
{
    private readonly ClaimWriter<RefusalRecord> refusals = new(dataSource, r => r.UsageId, StoreRefusalsAsync);

    public ValueTask DisposeAsync() => refusals.DisposeAsync();

    /// <summary>One usage's answer by its key (an equality, not <c>= ANY</c>: <see cref="KeyReads"/>).</summary>
    public const string ByIdSql = """
        SELECT usage_id, outcome, paid_by, account_id, cost, currency, input_tokens, output_tokens, balance_after,
               quota_used, billing_error_id, message
        FROM usage_record WHERE usage_id = $1
        """;

    /// <summary>The stored answers for those of <paramref name="usageIds"/> that have one.</summary>
    public async Task<Dictionary<Guid, BillingResult<UsageReceipt>>> ReadAsync(Guid[] usageIds, CancellationToken cancellationToken = default) =>
        (await KeyReads.ReadByKeysAsync(dataSource, ByIdSql, usageIds, reader => (UsageId: reader.GetGuid(0), Answer: Read(reader)), cancellationToken))
        .ToDictionary(r => r.UsageId, r => r.Answer);

    private static BillingResult<UsageReceipt> Read(NpgsqlDataReader reader) =>
        reader.GetString(1) == "charged"
            ? BillingResult<UsageReceipt>.Ok(new UsageReceipt(
                reader.GetGuid(0), reader.GetDecimal(4), reader.GetString(5), reader.GetInt64(6), reader.GetInt64(7),
                reader.GetString(2) == "project" ? PayingAccount.Project : PayingAccount.User,
                reader.GetGuid(3), reader.GetDecimal(8), reader.GetDecimal(9)))
            : BillingResult<UsageReceipt>.Fail(BillingStatus.InsufficientBalance, reader.GetString(11), reader.GetGuid(10));

    /// <summary>
    /// Stores a refusal and its one billing error, unless the usage id already has an answer: then that answer
    /// (the first call's) is returned instead and nothing is written. A late capture's refusal names its hold
    /// (<paramref name="holdId"/>) in the billing error.
    /// </summary>
    public async Task<BillingResult<UsageReceipt>> RecordRefusalAsync(
        Guid usageId, string scope, Guid scopeId, decimal cost, string currency, long inputTokens, long outputTokens,
        string message, object details, DateTimeOffset now, Func<Guid, IReadOnlyList<Billing.Events.BillingEventRow>>? events = null,
        Guid? holdId = null, CancellationToken cancellationToken = default)
    {
        var billingErrorId = RowIds.New();
        var eventRows = events?.Invoke(billingErrorId) ?? [];
        var refusal = new RefusalRecord(usageId, cost, currency, inputTokens, outputTokens, billingErrorId, message, now, scope, scopeId,
            JsonSerializer.Serialize(details), holdId, eventRows);
        if (await refusals.ClaimAsync(refusal).WaitAsync(cancellationToken))
        {
            foreach (var stored in eventRows) Billing.Diagnostics.EventMetrics.RecordWritten(stored.Type);
            return BillingResult<UsageReceipt>.Fail(BillingStatus.InsufficientBalance, message, billingErrorId);
        }

        var first = await ReadAsync([usageId], cancellationToken);
        return first[usageId];
    }

    /// <summary>Stores refusals (ClaimWriter): each one whose usage id it claims, with its error and events; returns those ids.</summary>
    private static async Task<HashSet<Guid>> StoreRefusalsAsync(RefusalRecord[] refusals, NpgsqlConnection connection)
    {
        // Rows in the order given (ORDER BY ord: usage-id order), each refusal's events in theirs (balance.depleted, then billing_error.created).
        await using var command = new NpgsqlCommand("""
            WITH input AS (
                SELECT * FROM unnest($1::uuid[], $2::numeric[], $3::text[], $4::bigint[], $5::bigint[], $6::uuid[], $7::text[],
                                     $8::timestamptz[], $9::text[], $10::uuid[], $11::text[], $12::uuid[]) WITH ORDINALITY
                    AS i(usage_id, cost, currency, input_tokens, output_tokens, billing_error_id, message, created_at, scope, scope_id, details, hold_id, ord)),
            rec AS (
                INSERT INTO usage_record (usage_id, outcome, cost, currency, input_tokens, output_tokens, billing_error_id, message, created_at)
                SELECT usage_id, 'refused', cost, currency, input_tokens, output_tokens, billing_error_id, message, created_at FROM input
                ORDER BY ord
                ON CONFLICT (usage_id) DO NOTHING
                RETURNING usage_id),
            err AS (
                INSERT INTO billing_error (id, scope, scope_id, error_type, message, details, usage_id, hold_id, created_at)
                SELECT i.billing_error_id, i.scope, i.scope_id, 'insufficient_balance', i.message, i.details::jsonb, i.usage_id, i.hold_id, i.created_at
                FROM input i JOIN rec USING (usage_id)
                ORDER BY i.ord),
            ev AS (
                INSERT INTO billing_event (id, type, scope, scope_id, billing_error_id, data, created_at)
                SELECT e.id, e.type, i.scope, i.scope_id, i.billing_error_id, e.data::jsonb, i.created_at
                FROM unnest($13::uuid[], $14::uuid[], $15::text[], $16::text[]) WITH ORDINALITY AS e(usage_id, id, type, data, ord)
                JOIN input i USING (usage_id) JOIN rec USING (usage_id)
                ORDER BY e.ord)
            SELECT usage_id FROM rec
            """, connection);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.UsageId).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = refusals.Select(r => r.Cost).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Currency).ToArray() });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = refusals.Select(r => r.InputTokens).ToArray() });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = refusals.Select(r => r.OutputTokens).ToArray() });
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.BillingErrorId).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Message).ToArray() });
        p.Add(new NpgsqlParameter<DateTime[]> { TypedValue = refusals.Select(r => r.CreatedAt.UtcDateTime).ToArray(), DataTypeName = "timestamptz[]" });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Scope).ToArray() });
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.ScopeId).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Details).ToArray() });
        p.Add(new NpgsqlParameter { Value = refusals.Select(r => r.HoldId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        ClaimStatements.AddEvents(p, refusals.SelectMany(r => r.Events.Select(e => (r.UsageId, e))));
        return await ClaimStatements.ClaimedAsync(command);
    }
}

/// <summary>A refused usage as stored: its usage record, its one billing error (of <see cref="Scope"/>) and that error's events.</summary>
internal sealed record RefusalRecord(
    Guid UsageId, decimal Cost, string Currency, long InputTokens, long OutputTokens, Guid BillingErrorId, string Message,
    DateTimeOffset CreatedAt, string Scope, Guid ScopeId, string Details, Guid? HoldId, IReadOnlyList<BillingEventRow> Events);
