using Billing.Storage;

namespace Billing.Accounts;

/// <summary>
/// The holds one batch changes, each in its latest state: a hold placed and ended in the same batch is written as one
/// insert (the statement's parts all see the same snapshot, so an update could not see a row inserted beside it).
/// </summary>
internal sealed class HoldChanges
{
    private readonly Dictionary<Guid, (HoldView Hold, bool Inserted)> changes = [];
    private readonly List<Guid> order = [];

    public int Count => order.Count;

    public HoldView? Find(Guid holdId) => changes.TryGetValue(holdId, out var change) ? change.Hold : null;

    public void Record(HoldView hold, bool inserted)
    {
        if (changes.TryGetValue(hold.HoldId, out var earlier)) inserted |= earlier.Inserted;
        else order.Add(hold.HoldId);
        changes[hold.HoldId] = (hold, inserted);
    }

    /// <summary>What the commit statement writes; <paramref name="expectedHoldsVersion"/> guards it with the version.</summary>
    public HoldWrites ToWrites(long expectedHoldsVersion)
    {
        if (order.Count == 0) return new HoldWrites(expectedHoldsVersion, [], [], []);
        var inserted = new List<HoldView>();
        var ended = new List<HoldView>();
        var shortfalls = new List<HoldCaptureReceipt>();
        foreach (var id in order)
        {
            var (hold, isNew) = changes[id];
            (isNew ? inserted : ended).Add(hold);
            if (hold.Capture is { Shortfall: > 0 } receipt) shortfalls.Add(receipt);
        }

        return new HoldWrites(expectedHoldsVersion, inserted, ended, shortfalls);
    }
}
