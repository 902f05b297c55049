namespace Billing.Hosting;

/// <summary>
/// How much work a silo queues before it refuses more (<see cref="BillingStatus.Overloaded"/>, a retryable 503):
/// under a slow database, memory and latency stay bounded instead of growing with the load. Section
/// <c>Billing:Limits</c> (environment: <c>Billing__Limits__AccountQueue</c>, …).
/// </summary>
public sealed class BillingLimits
{
    public const string Section = "Billing:Limits";

    /// <summary>
    /// Operations one account may have waiting for its next commit (four full group-commit batches by default).
    /// </summary>
    public int AccountQueue { get; set; } = 2_048;

    /// <summary>
    /// The ledger writer's partitions: connections that each commit one transaction at a time for their share of the
    /// silo's accounts. More give more transactions in flight, fewer give bigger ones (PostgreSQL's cost per statement
    /// and per flush is shared by more accounts). One on this project's 2-core benchmark machine, where PostgreSQL
    /// shares the cores with the silo: SPREAD hold + capture +23 % and a third less PostgreSQL CPU per pair against
    /// two (docs/performance.md, "One ledger writer per silo"). A database on cores of its own may take more.
    /// </summary>
    public int LedgerWriters { get; set; } = 1;

    /// <summary>
    /// Account writes each of the ledger writer's partitions may hold. An account has at most one write
    /// queued at a time, so this bounds how many accounts wait on a slow database per partition; the default is
    /// above what 10,000 busy accounts per silo need.
    /// </summary>
    public int LedgerWriterQueue { get; set; } = 16_384;
}
