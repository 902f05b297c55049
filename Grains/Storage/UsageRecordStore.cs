using System.Text.Json;
using Npgsql;

namespace Billing.Storage;

/// <summary>
/// <c>usage_record</c>: the one answer given for each usage id, whichever account charged it or whether it was
/// refused. Its primary key is the at-most-once guarantee (I3); a refusal and its billing error (I5) are one statement.
/// </summary>
public sealed class UsageRecordStore(NpgsqlDataSource dataSource)
{
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
        await using var command = dataSource.CreateCommand("""
            WITH rec AS (
                INSERT INTO usage_record (usage_id, outcome, cost, currency, input_tokens, output_tokens, billing_error_id, message, created_at)
                VALUES ($1, 'refused', $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (usage_id) DO NOTHING
                RETURNING usage_id),
            err AS (
                INSERT INTO billing_error (id, scope, scope_id, error_type, message, details, usage_id, hold_id, created_at)
                SELECT $6, $9, $10, 'insufficient_balance', $7, $11::jsonb, usage_id, $15, $8 FROM rec),
            ev AS (
                INSERT INTO billing_event (id, type, scope, scope_id, billing_error_id, data, created_at)
                SELECT e.id, e.type, $9, $10, $6, e.data::jsonb, $8 FROM rec, unnest($12::uuid[], $13::text[], $14::text[]) AS e(id, type, data))
            SELECT count(*) FROM rec
            """);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<Guid> { TypedValue = usageId });
        p.Add(new NpgsqlParameter<decimal> { TypedValue = cost });
        p.Add(new NpgsqlParameter<string> { TypedValue = currency });
        p.Add(new NpgsqlParameter<long> { TypedValue = inputTokens });
        p.Add(new NpgsqlParameter<long> { TypedValue = outputTokens });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = billingErrorId });
        p.Add(new NpgsqlParameter<string> { TypedValue = message });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
        p.Add(new NpgsqlParameter<string> { TypedValue = scope });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = scopeId });
        p.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(details) });
        // The refusal's events (balance.depleted, billing_error.created): stored with the error or not at all (E1).
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = eventRows.Select(e => e.Id).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = eventRows.Select(e => e.Type).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = eventRows.Select(e => e.Data).ToArray() });
        p.Add(new NpgsqlParameter { Value = (object?)holdId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Uuid });
        if ((long)(await command.ExecuteScalarAsync(cancellationToken))! == 1)
        {
            foreach (var stored in eventRows) Billing.Diagnostics.EventMetrics.RecordWritten(stored.Type);
            return BillingResult<UsageReceipt>.Fail(BillingStatus.InsufficientBalance, message, billingErrorId);
        }

        var first = await ReadAsync([usageId], cancellationToken);
        return first[usageId];
    }
}
