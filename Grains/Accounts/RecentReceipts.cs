namespace Billing.Accounts;

/// <summary>
/// Receipts of an account's latest charges, for fast answers to retries; older usage ids are answered from
/// usage_record (the database is the guarantee, this is only a shortcut). Oldest forgotten first.
/// </summary>
/// <remarks>
/// Kept inline in a ring of structs, not as the receipt objects the callers got: a kept receipt outlives the
/// young GC generations, so with one object per charge every usage of 10,000 busy accounts left a dead receipt
/// in the oldest generation, and the silo's heap was mostly such holes (docs/performance.md, "Memory after the whole matrix").
/// </remarks>
internal sealed class RecentReceipts(int kept)
{
    private readonly Dictionary<Guid, int> slotOf = [];
    private KeptReceipt[] ring = [];
    private int oldest;
    private string? currency;

    public bool TryGet(Guid usageId, out UsageReceipt receipt)
    {
        if (slotOf.TryGetValue(usageId, out var slot))
        {
            receipt = ring[slot].ToReceipt();
            return true;
        }
        receipt = null!;
        return false;
    }

    public void Remember(UsageReceipt receipt)
    {
        if (slotOf.ContainsKey(receipt.UsageId)) return;
        int slot;
        if (slotOf.Count < kept)
        {
            slot = slotOf.Count;
            // Grown as an account is used, so an account charged a few times holds a few slots, not `kept`.
            if (slot == ring.Length) Array.Resize(ref ring, Math.Min(kept, Math.Max(4, ring.Length * 2)));
        }
        else
        {
            slot = oldest;
            slotOf.Remove(ring[slot].UsageId);
            oldest = (oldest + 1) % kept;
        }
        // One string for the account's currency, not one per receipt (a charge from another silo brings its own copy).
        if (receipt.Currency != currency) currency = receipt.Currency;
        ring[slot] = KeptReceipt.From(receipt, currency);
        slotOf.Add(receipt.UsageId, slot);
    }

    private readonly record struct KeptReceipt(
        Guid UsageId,
        decimal Cost,
        string Currency,
        long InputTokens,
        long OutputTokens,
        PayingAccount DeductedFrom,
        Guid AccountId,
        decimal BalanceAfter,
        decimal QuotaUsed)
    {
        public static KeptReceipt From(UsageReceipt r, string currency) =>
            new(r.UsageId, r.Cost, currency, r.InputTokens, r.OutputTokens, r.DeductedFrom, r.AccountId, r.BalanceAfter, r.QuotaUsed);

        public UsageReceipt ToReceipt() =>
            new(UsageId, Cost, Currency, InputTokens, OutputTokens, DeductedFrom, AccountId, BalanceAfter, QuotaUsed);
    }
}
