namespace Billing.Accounts;

/// <summary>
/// Receipts of an account's latest charges, for fast answers to retries; older usage ids are answered from
/// usage_record (the database is the guarantee, this is only a shortcut). Oldest forgotten first.
/// </summary>
internal sealed class RecentReceipts(int kept)
{
    private readonly Dictionary<Guid, UsageReceipt> receipts = [];
    private readonly Queue<Guid> order = new();

    public bool TryGet(Guid usageId, out UsageReceipt receipt) => receipts.TryGetValue(usageId, out receipt!);

    public void Remember(UsageReceipt receipt)
    {
        if (!receipts.TryAdd(receipt.UsageId, receipt)) return;
        order.Enqueue(receipt.UsageId);
        if (order.Count > kept) receipts.Remove(order.Dequeue());
    }
}
