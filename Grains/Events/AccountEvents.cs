using Billing.Accounts;
using Billing.Diagnostics;
using Billing.Storage;

namespace Billing.Events;

/// <summary>
/// What an account grain keeps for its events: its balance alerts, loaded with the account and reloaded with it, and
/// the hooks its group commit calls (a batch opens, an operation is decided, a batch is committed).
/// </summary>
internal sealed class AccountEvents(EventStore store, AccountTable table, Guid accountId)
{
    public BalanceAlerts Alerts { get; } = new();

    public async Task ReloadAsync(CancellationToken cancellationToken = default)
    {
        var (thresholds, lowPending) = await store.LoadAlertsAsync(table.Scope, accountId, cancellationToken);
        Alerts.Load(thresholds, lowPending);
    }

    public void Begin(LedgerBatch batch) => Alerts.Begin(batch);

    public void OnDecided(LedgerBatch batch) => Alerts.Evaluate(batch);

    public void OnCommitted(LedgerBatch batch)
    {
        Alerts.Committed(batch);
        foreach (var written in batch.Events) EventMetrics.RecordWritten(written.Type);
    }
}
