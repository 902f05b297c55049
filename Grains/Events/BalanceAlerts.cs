using Billing.Accounts;

namespace Billing.Events;

/// <summary>
/// One account's balance alerts, evaluated on the account's thread after every decision of a group-commit batch:
/// <c>balance.low</c> once per downward crossing of each threshold (re-armed when available rises above it), and
/// <c>balance.recovered</c> when available rises above the highest threshold after a <c>balance.low</c>. The events
/// go into the batch, so the statement that writes the change writes them too (E1). Whether a low is pending is
/// the outbox itself (the account's latest low or recovered event), so it needs no state of its own.
/// </summary>
internal sealed class BalanceAlerts
{
    private decimal[] thresholds = []; // descending
    private bool lowPending;           // committed
    private bool batchLowPending;      // as the batch being decided leaves it
    private decimal lastAvailable;
    private AccountState? committedState; // the state the last batch committed, and what it left available then
    private decimal committedAvailable;

    public IReadOnlyList<decimal> Thresholds => thresholds;

    public void Load(decimal[] configured, bool lowPendingStored)
    {
        thresholds = configured.OrderDescending().ToArray();
        lowPending = lowPendingStored;
    }

    public void Replace(decimal[] configured) => thresholds = configured.OrderDescending().ToArray();

    /// <summary>Thresholds <paramref name="available"/> is at or below.</summary>
    public decimal[] Crossed(decimal available) => thresholds.Where(t => available <= t).ToArray();

    /// <summary>
    /// A batch opens against its start state (before any row, a cycle reset included). Its crossings are judged from
    /// what the account's last write left available, not from the start state's available now: time alone raises
    /// available (a hold past its expiry, an ended quota cycle), and that rise must reach the first evaluation of the
    /// next write (the one that records the expiry or the cycle reset) to write its <c>balance.recovered</c>.
    /// </summary>
    public void Begin(LedgerBatch batch)
    {
        batchLowPending = lowPending;
        lastAvailable = ReferenceEquals(batch.Start, committedState) ? committedAvailable : AvailableWhenStored(batch.Start);
    }

    /// <summary>
    /// An account loaded (or written outside the group commit): its available as of its newest change, the newest of
    /// its history row and its active holds' placements. What expired or ended after that is a rise still to judge.
    /// </summary>
    private static decimal AvailableWhenStored(AccountState state)
    {
        var at = state.UpdatedAt;
        foreach (var hold in state.Holds.All)
        {
            if (hold.CreatedAt > at) at = hold.CreatedAt;
        }

        return BillingEvents.Available(state, at);
    }

    /// <summary>After a row (or a decision that appended none): the crossings it made, as events of the batch.</summary>
    public void Evaluate(LedgerBatch batch)
    {
        if (thresholds.Length == 0) return;
        var available = BillingEvents.Available(batch.State, batch.Now);
        var before = lastAvailable;
        if (available == before) return;
        lastAvailable = available;
        if (available < before)
        {
            foreach (var threshold in thresholds)
            {
                if (before > threshold && available <= threshold)
                {
                    batch.Events.Add(BillingEvents.BalanceLow(batch.State, available, threshold, batch.Now));
                    batchLowPending = true;
                }
            }
        }
        else if (batchLowPending && before <= thresholds[0] && available > thresholds[0])
        {
            batch.Events.Add(BillingEvents.BalanceRecovered(batch.State, available, thresholds[0], batch.Now));
            batchLowPending = false;
        }
    }

    /// <summary>The batch decided last was committed: what it left is what the next batch is judged from.</summary>
    public void Committed(LedgerBatch batch)
    {
        lowPending = batchLowPending;
        committedState = batch.State;
        committedAvailable = BillingEvents.Available(batch.State, batch.Now);
    }
}
