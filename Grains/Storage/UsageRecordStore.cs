using System.Text.Json;
using Npgsql;

namespace Billing.Storage;

/// <summary>
/// <c>usage_record</c>: the one answer given for each usage id, whichever account charged it or whether it was
/// refused. Its primary key is the at-most-once guarantee (I3); a refusal and its billing error (I5) are one statement,
/// shared with the other refusals of the moment (<see cref="RefusalWriter"/>).
/// </summary>
public sealed class UsageRecordStore(NpgsqlDataSource dataSource) : IAsyncDisposable
{
    private readonly Lazy<RefusalWriter> refusals = new(() => new RefusalWriter(dataSource));

    private RefusalWriter Refusals => refusals.Value;

    public ValueTask DisposeAsync() => refusals.IsValueCreated ? refusals.Value.DisposeAsync() : ValueTask.CompletedTask;

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
        if (await Refusals.ClaimAsync(refusal).WaitAsync(cancellationToken))
        {
            foreach (var stored in eventRows) Billing.Diagnostics.EventMetrics.RecordWritten(stored.Type);
            return BillingResult<UsageReceipt>.Fail(BillingStatus.InsufficientBalance, message, billingErrorId);
        }

        var first = await ReadAsync([usageId], cancellationToken);
        return first[usageId];
    }
}
