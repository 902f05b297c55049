using Orleans.Concurrency;
using Billing.Diagnostics;
using Billing.Storage;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Billing.Accounts;

/// <summary>
/// One account, one activation: the only writer of its rows. Requests are reentrant but every decision is made
/// synchronously on the grain's single thread, in arrival order, against the state the earlier requests leave.
/// While one write is in flight the next requests queue up and are committed together in the next round trip
/// (group commit); each caller is answered only after the statement holding its row has committed.
/// </summary>
[Reentrant]
public abstract class AccountGrain(LedgerStore ledger, LedgerWriter writer, UsageRecordStore usageRecords, TimeProvider clock, ILogger logger)
    : Grain, IAccountGrain
{
    /// <summary>Most operations one statement carries; a longer queue goes in several round trips.</summary>
    private const int MaxBatch = 512;
    private const int MaxAttempts = 8;
    /// <summary>
    /// Receipts kept for fast answers to retries; older usage ids are answered from usage_record (the database
    /// is the guarantee, this is only a shortcut). Small, since 10,000 active accounts keep this many each.
    /// </summary>
    private const int RecentReceiptsKept = 64;

    private readonly Queue<PendingOperation> queue = new();
    private readonly Dictionary<Guid, Task<BillingResult<UsageReceipt>>> chargesInFlight = [];
    private readonly Dictionary<Guid, UsageReceipt> recentReceipts = [];
    private readonly Queue<Guid> recentOrder = new();
    private readonly SemaphoreSlim initialization = new(1, 1);
    private Task? writing;
    private bool reloadNeeded;

    protected abstract AccountTable Table { get; }

    /// <summary>The committed account; null when it was never initialised.</summary>
    protected AccountState? State { get; set; }

    protected Guid AccountId => this.GetPrimaryKey();

    protected TimeProvider Clock => clock;

    protected LedgerStore Ledger => ledger;

    public override async Task OnActivateAsync(CancellationToken cancellationToken) =>
        State = await ledger.LoadAsync(Table, AccountId, cancellationToken);

    public Task<BillingResult<AccountView>> GetAccount() => Task.FromResult(State is null
        ? NotFound<AccountView>()
        : BillingResult<AccountView>.Ok(State.ToView()));

    public async Task<BillingResult<HistoryPage>> GetHistory(HistoryQuery query)
    {
        if (query.Limit is < 1 or > 500) return BillingResult<HistoryPage>.Fail(BillingStatus.InvalidInput, "limit must be between 1 and 500.");
        if (query.Before is < 1) return BillingResult<HistoryPage>.Fail(BillingStatus.InvalidInput, "cursor is not valid.");
        if (State is null) return NotFound<HistoryPage>();
        return BillingResult<HistoryPage>.Ok(await ledger.ReadHistoryAsync(Table, AccountId, query));
    }

    public Task<BillingResult<UsageReceipt>> Charge(AccountCharge charge)
    {
        if (State is null) return Task.FromResult(NotFound<UsageReceipt>());
        if (recentReceipts.TryGetValue(charge.UsageId, out var receipt)) return Task.FromResult(BillingResult<UsageReceipt>.Ok(receipt));
        // A retry of a usage still being written waits for, and shares, the first attempt's answer.
        if (chargesInFlight.TryGetValue(charge.UsageId, out var inFlight)) return inFlight;

        var operation = new ChargeOperation(charge);
        chargesInFlight[charge.UsageId] = operation.Task;
        Enqueue(operation);
        return operation.Task;
    }

    public Task<BillingResult<AccountView>> Credit(AccountCredit credit)
    {
        if (credit.Amount <= 0) return Task.FromResult(Invalid<AccountView>("amount must be positive."));
        if (!HistoryReasons.CreditReasons.Contains(credit.Reason))
            return Task.FromResult(Invalid<AccountView>($"reason must be one of: {string.Join(", ", HistoryReasons.CreditReasons)}."));
        if (credit.CreditId == Guid.Empty) return Task.FromResult(Invalid<AccountView>("creditId must not be the nil UUID."));
        if (State is null) return Task.FromResult(NotFound<AccountView>());
        var operation = new CreditOperation(credit);
        Enqueue(operation);
        return operation.Task;
    }

    public Task<BillingResult<AccountView>> ChangePlan(PlanChange plan)
    {
        if (plan.MonthlyQuota < 0) return Task.FromResult(Invalid<AccountView>("monthlyQuota must not be negative."));
        if (!plan.IsPro && plan.MonthlyQuota != 0) return Task.FromResult(Invalid<AccountView>("monthlyQuota applies to pro accounts only; use 0."));
        if (State is null) return Task.FromResult(NotFound<AccountView>());
        var operation = new PlanChangeOperation(plan);
        Enqueue(operation);
        return operation.Task;
    }

    /// <summary>Queues an operation and makes sure the writer loop runs.</summary>
    private protected void Enqueue(PendingOperation operation)
    {
        queue.Enqueue(operation);
        if (writing is null || writing.IsCompleted) writing = WriteQueued();
    }

    private async Task WriteQueued()
    {
        while (queue.Count > 0)
        {
            var batch = new List<PendingOperation>(Math.Min(queue.Count, MaxBatch));
            while (queue.Count > 0 && batch.Count < MaxBatch) batch.Add(queue.Dequeue());
            try
            {
                await CommitBatch(batch);
            }
            catch (Exception exception)
            {
                // A fault (database unreachable, unknown commit outcome): the callers get the exception and retry
                // with their usage ids; what was committed, if anything, is reloaded before the next decision.
                logger.LogError(exception, "Commit of {OperationCount} operation(s) on {AccountKind} account {AccountId} failed", batch.Count, Table.Kind, AccountId);
                reloadNeeded = true;
                foreach (var operation in batch) operation.Fail(exception);
            }
            finally
            {
                foreach (var operation in batch.OfType<ChargeOperation>()) chargesInFlight.Remove(operation.Charge.UsageId);
            }
        }
    }

    private async Task CommitBatch(List<PendingOperation> batch)
    {
        var refusalsChecked = false;
        for (var attempt = 1; ; attempt++)
        {
            if (reloadNeeded)
            {
                State = await ledger.LoadAsync(Table, AccountId);
                reloadNeeded = false;
            }

            var pending = batch.Where(o => !o.Settled).ToList();
            var decided = Decide(pending);
            if (!refusalsChecked && pending.OfType<ChargeOperation>().Any(c => c.RefusedForBalance))
            {
                // A refusal writes nothing, so no version guard would notice a stale state: before refusing,
                // make sure no other activation has moved the account on (a top-up it took, for example).
                refusalsChecked = true;
                if (await ledger.ReadVersionAsync(Table, AccountId) != State!.Version)
                {
                    logger.LogWarning("{AccountKind} account {AccountId} was changed by another activation; reloading before refusing", Table.Kind, AccountId);
                    reloadNeeded = true;
                    continue;
                }
            }

            if (decided.Rows.Count > 0)
            {
                bool committed;
                try
                {
                    committed = await writer.CommitAsync(new LedgerCommit(decided.State, State!.Version, decided.Rows, decided.Charges, decided.ResolveInsufficientBalanceErrors));
                }
                catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.UniqueViolation && attempt < MaxAttempts)
                {
                    // A usage id or credit id of this batch already has its effect stored (a retry, or another
                    // account or activation got there first): answer those from the database, decide the rest again.
                    logger.LogInformation("Batch on {AccountKind} account {AccountId} hit stored id ({Constraint}); settling duplicates", Table.Kind, AccountId, exception.ConstraintName);
                    await SettleStoredOperations(pending);
                    reloadNeeded = true;
                    continue;
                }

                if (!committed)
                {
                    if (attempt >= MaxAttempts) throw new InvalidOperationException($"{Table.Kind} account {AccountId}: version conflict persisted after {attempt} attempts.");
                    // Another activation of this account wrote first (it happens during membership changes).
                    logger.LogWarning("Version conflict on {AccountKind} account {AccountId} at version {Version}; reloading", Table.Kind, AccountId, State.Version);
                    reloadNeeded = true;
                    continue;
                }

                State = decided.State;
                BillingMetrics.RecordBatch(decided.Rows.Count);
            }

            foreach (var operation in batch)
            {
                if (operation is ChargeOperation { Receipt: { } receipt } charge)
                {
                    Remember(receipt.UsageId, receipt);
                    BillingMetrics.RecordCharge(Table.Scope, charge.Charge.Cost, charge.Charge.Currency);
                    BillingMetrics.RecordDeduction(charge.StartTimestamp);
                }

                operation.Complete(State);
            }

            return;
        }
    }

    private LedgerBatch Decide(List<PendingOperation> operations)
    {
        var now = Clock.GetDatabaseNow();
        var batch = new LedgerBatch(State!, now);
        if (AccountLedger.CycleReset(batch.State, now) is { } reset) batch.Append(reset, AccountLedger.ApplyCycleReset);
        foreach (var operation in operations) operation.Decide(batch);
        return batch;
    }

    private async Task SettleStoredOperations(List<PendingOperation> operations)
    {
        var charges = operations.OfType<ChargeOperation>().ToList();
        var stored = await usageRecords.ReadAsync(charges.Select(c => c.Charge.UsageId).ToArray());
        foreach (var charge in charges)
        {
            if (stored.TryGetValue(charge.Charge.UsageId, out var answer)) charge.Settle(answer);
        }

        var markers = operations.OfType<UserFallbackOperation>().ToList();
        var markedUsages = await ledger.ExistingUsageIdsAsync(Table, AccountId, markers.Select(m => m.UsageId).ToArray());
        foreach (var marker in markers.Where(m => markedUsages.Contains(m.UsageId))) marker.Settle();

        var credits = operations.OfType<CreditOperation>().Where(c => c.Credit.CreditId is not null).ToList();
        var applied = await ledger.ExistingCreditIdsAsync(Table, AccountId, credits.Select(c => c.Credit.CreditId!.Value).ToArray());
        foreach (var credit in credits.Where(c => applied.Contains(c.Credit.CreditId!.Value))) credit.Settle();
    }

    private void Remember(Guid usageId, UsageReceipt receipt)
    {
        if (!recentReceipts.TryAdd(usageId, receipt)) return;
        recentOrder.Enqueue(usageId);
        if (recentOrder.Count > RecentReceiptsKept) recentReceipts.Remove(recentOrder.Dequeue());
    }

    /// <summary>Creates the account once; concurrent initialisations of one account run one after another.</summary>
    private protected async Task<BillingResult<AccountInitialized>> InitializeOnce(Func<Task<BillingResult<AccountInitialized>>> create)
    {
        await initialization.WaitAsync();
        try
        {
            return await create();
        }
        finally
        {
            initialization.Release();
        }
    }

    private protected BillingResult<T> NotFound<T>() where T : class =>
        BillingResult<T>.Fail(BillingStatus.AccountNotFound, $"The {Table.Scope} account {AccountId} was never initialised.");

    private protected static BillingResult<T> Invalid<T>(string detail) where T : class =>
        BillingResult<T>.Fail(BillingStatus.InvalidInput, detail);
}
