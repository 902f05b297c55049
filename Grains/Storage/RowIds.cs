namespace Billing.Storage;

/// <summary>
/// Ids of the rows the ledger appends (history rows, events, billing errors): time-ordered UUIDs (version 7), so
/// each of those tables' primary-key index grows at its right edge. With random (version 4) ids every insert lands on
/// a random leaf page of the index: once the index is larger than memory, that is a page read per row.
/// </summary>
public static class RowIds
{
    public static Guid New() => Guid.CreateVersion7();
}
