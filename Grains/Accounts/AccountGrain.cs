using System.Text.RegularExpressions;
using Orleans.Concurrency;
using Billing.Diagnostics;
using Billing.Hosting;
using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Billing.Accounts;

/// <summary>
/// One account, one activation: the only writer of its rows. Requests are reentrant but every decision is made
/// synchronously on the grain's single thread, in arrival order, against the state the earlier requests leave.
/// While one write is in flight the next requests queue up and are committed together in the next round trip
/// (group commit); each caller is answered only after the statement holding its row has committed.
/// <para>
/// It trusts no caller: money-moving calls validate their input here and come only from the billing grains
/// (charges) or from them and the gateway (credits, plan changes, initialisation); see <see cref="Invoke"/>.
/// </para>
/// </summary>
[Reentrant]
public abstract partial class AccountGrain(LedgerStore ledger, LedgerWriter writer, UsageRecordStore usageRecords, TimeProvider clock, ILogger logger)
    : Grain, IAccountGrain, IIncomingGrainCallFilter
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
    // A retry (or a duplicate) of a request still being written waits for, and shares, the first one's answer:
    // two rows with one id in one statement would violate its own unique index and fail the whole batch.
    private readonly Dictionary<Guid, Task<BillingResult<UsageReceipt>>> chargesInFlight = [];
    private readonly Dictionary<Guid, Task<BillingResult<AccountView>>> creditsInFlight = [];
    private readonly Dictionary<Guid, Task<bool>> markersInFlight = [];
    private readonly Dictionary<Guid, UsageReceipt> recentReceipts = [];
    private readonly Queue<Guid> recentOrder = new();
    private readonly SemaphoreSlim initialization = new(1, 1);
    private BillingLimits? limits;
    private BillingCallers? callers;
    private Task? writing;
    private Task? reloading;
    private bool reloadNeeded;

    protected abstract AccountTable Table { get; }

    /// <summary>The reasons a charge of this kind of account may carry.</summary>
    protected abstract IReadOnlySet<string> ChargeReasons { get; }

    /// <summary>The committed account; null when it was never initialised.</summary>
    protected AccountState? State { get; set; }

    protected Guid AccountId => this.GetPrimaryKey();

    protected TimeProvider Clock => clock;

    /// <summary>
    /// "Now" for a new row of this account: the silo's clock, but never before the account's newest row, so a
    /// silo whose clock is behind cannot write history that goes back in time after a fail-over.
    /// </summary>
    protected DateTimeOffset Now()
    {
        var now = clock.GetDatabaseNow();
        return State is { } state && state.UpdatedAt > now ? state.UpdatedAt : now;
    }

    protected LedgerStore Ledger => ledger;

    // Resolved here rather than taken by the constructor, so the account grains' constructors stay as they are.
    private BillingLimits Limits => limits ??= ServiceProvider.GetRequiredService<IOptions<BillingLimits>>().Value;

    private BillingCallers Callers => callers ??= ServiceProvider.GetRequiredService<BillingCallers>();

    public override async Task OnActivateAsync(CancellationToken cancellationToken) =>
        State = await ledger.LoadAsync(Table, AccountId, cancellationToken);

    public async Task<BillingResult<AccountView>> GetAccount()
    {
        // After a write of unknown outcome the database, not the last state seen, is the answer.
        await ReloadIfNeeded();
        return State is null ? NotFound<AccountView>() : BillingResult<AccountView>.Ok(State.ToView());
    }

    public async Task<BillingResult<HistoryPage>> GetHistory(HistoryQuery query)
    {
        if (query.Limit is < 1 or > 500) return BillingResult<HistoryPage>.Fail(BillingStatus.InvalidInput, "limit must be between 1 and 500.");
        if (query.Before is < 1) return BillingResult<HistoryPage>.Fail(BillingStatus.InvalidInput, "cursor is not valid.");
        if (State is null) return NotFound<HistoryPage>();
        return BillingResult<HistoryPage>.Ok(await ledger.ReadHistoryAsync(Table, AccountId, query));
    }

    public Task<BillingResult<UsageReceipt>> Charge(AccountCharge charge)
    {
        if (ValidateCharge(charge) is { } invalid) return Task.FromResult(Invalid<UsageReceipt>(invalid));
        if (State is null) return Task.FromResult(NotFound<UsageReceipt>());
        if (recentReceipts.TryGetValue(charge.UsageId, out var receipt)) return Task.FromResult(BillingResult<UsageReceipt>.Ok(receipt));
        if (chargesInFlight.TryGetValue(charge.UsageId, out var inFlight)) return inFlight;
        if (Overloaded(counted: false) is { } overloaded) return Task.FromResult(BillingResult<UsageReceipt>.Fail(overloaded));

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
        if (credit.CreditId is { } creditId && creditsInFlight.TryGetValue(creditId, out var inFlight)) return inFlight;
        if (Overloaded() is { } overloaded) return Task.FromResult(BillingResult<AccountView>.Fail(overloaded));

        var operation = new CreditOperation(credit);
        if (credit.CreditId is { } id) creditsInFlight[id] = operation.Task;
        Enqueue(operation);
        return operation.Task;
    }

    public Task<BillingResult<AccountView>> ChangePlan(PlanChange plan)
    {
        if (plan.MonthlyQuota < 0) return Task.FromResult(Invalid<AccountView>("monthlyQuota must not be negative."));
        if (!plan.IsPro && plan.MonthlyQuota != 0) return Task.FromResult(Invalid<AccountView>("monthlyQuota applies to pro accounts only; use 0."));
        if (State is null) return Task.FromResult(NotFound<AccountView>());
        if (Overloaded() is { } overloaded) return Task.FromResult(BillingResult<AccountView>.Fail(overloaded));
        var operation = new PlanChangeOperation(plan);
        Enqueue(operation);
        return operation.Task;
    }

    /// <summary>The project's zero-amount row for a usage its user paid; a duplicate in flight shares the first's answer.</summary>
    private protected Task RecordFallbackMarker(UsageReceipt userReceipt, Guid modelId)
    {
        if (State is null) return Task.CompletedTask;
        if (markersInFlight.TryGetValue(userReceipt.UsageId, out var inFlight)) return inFlight;
        if (Overloaded() is { } overloaded) return Task.FromException(new BillingUnavailableException(overloaded.Detail));
        var operation = new UserFallbackOperation(userReceipt, modelId);
        markersInFlight[userReceipt.UsageId] = operation.Task;
        Enqueue(operation);
        return operation.Task;
    }

    /// <summary>
    /// The trust boundary (DESIGN.md): a charge or a fallback marker only from the billing grains (usage goes
    /// through <see cref="IUsageGrain"/>); a credit, a plan change or an initialisation also from a cluster client
    /// (the gateway, which checks the admin role at HTTP); never from any other grain, such as an agent's.
    /// Refused calls get <see cref="BillingStatus.Forbidden"/> and change nothing. Reads are open.
    /// </summary>
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        var method = context.InterfaceMethod.Name;
        var caller = Callers.Classify(context.SourceId);
        var allowed = method switch
        {
            nameof(IAccountGrain.Charge) or nameof(IProjectGrain.RecordUserFallback) => caller == CallerKind.BillingGrain,
            nameof(IAccountGrain.Credit) or nameof(IAccountGrain.ChangePlan) or nameof(IUserGrain.Initialize) =>
                caller is CallerKind.BillingGrain or CallerKind.Client,
            _ => true,
        };
        if (allowed)
        {
            await context.Invoke();
            return;
        }

        LogForbidden(logger, method, Table.Kind, AccountId, context.SourceId?.ToString(), caller);
        BillingMetrics.RecordRefusal(BillingStatus.Forbidden);
        var detail = $"{method} on a {Table.Scope} account is not allowed from this caller: only the billing grains move money.";
        context.Result = method switch
        {
            nameof(IAccountGrain.Charge) => BillingResult<UsageReceipt>.Fail(BillingStatus.Forbidden, detail),
            nameof(IUserGrain.Initialize) => BillingResult<AccountInitialized>.Fail(BillingStatus.Forbidden, detail),
            nameof(IProjectGrain.RecordUserFallback) => throw new BillingOperationFailedException(detail),
            _ => BillingResult<AccountView>.Fail(BillingStatus.Forbidden, detail),
        };
    }

    private string? ValidateCharge(AccountCharge charge)
    {
        if (charge.UsageId == Guid.Empty) return "usageId must not be the nil UUID.";
        if (charge.ModelId == Guid.Empty) return "modelId must not be the nil UUID.";
        if (charge.Cost < 0) return "cost must not be negative.";
        if (charge.InputTokens < 0 || charge.OutputTokens < 0) return "Token counts must not be negative.";
        if (charge.Currency is null || !CurrencyCode().IsMatch(charge.Currency)) return "currency must be a three-letter upper-case ISO 4217 code.";
        if (charge.Reason is null || !ChargeReasons.Contains(charge.Reason))
            return $"reason of a {Table.Scope} charge must be one of: {string.Join(", ", ChargeReasons)}.";
        return null;
    }

    [GeneratedRegex("^[A-Z]{3}$")]
    private static partial Regex CurrencyCode();

    /// <summary>
    /// The refusal for a full queue, or null when there is room. Counted in billing.refusals here, except for
    /// charges: <see cref="IUsageGrain"/> counts the refusals it answers, this one among them.
    /// </summary>
    private BillingProblem? Overloaded(bool counted = true)
    {
        if (queue.Count < Limits.AccountQueue) return null;
        if (counted) BillingMetrics.RecordRefusal(BillingStatus.Overloaded);
        return new BillingProblem(BillingStatus.Overloaded,
            $"The {Table.Scope} account {AccountId} has too many requests waiting; nothing was done. Retry later with the same id.");
    }

    /// <summary>Queues an operation (the caller checked <see cref="Overloaded"/>) and makes sure the writer loop runs.</summary>
    private void Enqueue(PendingOperation operation)
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
                await CommitIsolating(batch);
            }
            catch (Exception exception)
            {
                // A fault (database unreachable, unknown commit outcome): the callers get the exception and retry
                // with their ids; what was committed, if anything, is reloaded before the next decision or read.
                logger.LogError(exception, "Commit of {OperationCount} operation(s) on {AccountKind} account {AccountId} failed", batch.Count, Table.Kind, AccountId);
                reloadNeeded = true;
                foreach (var operation in batch) operation.Fail(exception);
            }
            finally
            {
                foreach (var operation in batch)
                {
                    switch (operation)
                    {
                        case ChargeOperation charge:
                            chargesInFlight.Remove(charge.Charge.UsageId);
                            break;
                        case CreditOperation { Credit.CreditId: { } creditId }:
                            creditsInFlight.Remove(creditId);
                            break;
                        case UserFallbackOperation marker:
                            markersInFlight.Remove(marker.UsageId);
                            break;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Commits a batch; when the database refuses it deterministically (a data or constraint error that a retry
    /// would meet again), the statement wrote nothing, so the batch is split in halves and each committed on
    /// its own, until the operation at fault is alone: it alone fails, with a non-retryable fault.
    /// </summary>
    private async Task CommitIsolating(List<PendingOperation> batch)
    {
        try
        {
            await CommitBatch(batch);
        }
        catch (PostgresException exception) when (IsDeterministic(exception))
        {
            var pending = batch.Where(o => !o.Settled).ToList();
            if (pending.Count > 1)
            {
                LogIsolating(logger, Table.Kind, AccountId, pending.Count, exception.SqlState);
                var half = batch.Count / 2;
                await CommitIsolating(batch[..half]);
                await CommitIsolating(batch[half..]);
                return;
            }

            foreach (var operation in pending)
            {
                LogOperationRefusedByDatabase(logger, exception, operation.Kind, operation.RequestId, Table.Kind, AccountId, exception.SqlState);
                operation.Fail(new BillingOperationFailedException(
                    $"The {operation.Kind} {operation.RequestId?.ToString() ?? "request"} could not be recorded on {Table.Scope} account {AccountId}; " +
                    "retrying will not help. Report it with its id."));
            }

            foreach (var operation in batch.Where(o => o.Settled)) operation.Complete(State);
        }
    }

    /// <summary>Data exceptions (22…) and integrity violations (23…): the same statement would fail again.</summary>
    private static bool IsDeterministic(PostgresException exception) =>
        exception.SqlState.StartsWith("22", StringComparison.Ordinal) || exception.SqlState.StartsWith("23", StringComparison.Ordinal);

    private async Task CommitBatch(List<PendingOperation> batch)
    {
        var refusalsChecked = false;
        for (var attempt = 1; ; attempt++)
        {
            await ReloadIfNeeded();

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
                catch (LedgerWriterFullException)
                {
                    // The silo's writer is saturated: refuse at once, nothing was queued or written.
                    foreach (var operation in pending)
                    {
                        if (operation is not ChargeOperation) BillingMetrics.RecordRefusal(BillingStatus.Overloaded); // usage counts its own
                        operation.Refuse(new BillingProblem(BillingStatus.Overloaded,
                            "The billing database is behind; nothing was done. Retry later with the same id."));
                    }

                    foreach (var operation in batch) operation.Complete(State);
                    return;
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

    /// <summary>
    /// Reloads the account when a write's outcome is unknown (or another activation wrote); concurrent callers
    /// (a read and the writer loop) share one reload.
    /// </summary>
    private Task ReloadIfNeeded()
    {
        if (!reloadNeeded) return Task.CompletedTask;
        if (reloading is { IsCompleted: false }) return reloading;
        return reloading = Reload();

        async Task Reload()
        {
            State = await ledger.LoadAsync(Table, AccountId);
            reloadNeeded = false;
        }
    }

    private LedgerBatch Decide(List<PendingOperation> operations)
    {
        var now = Now();
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
            await ReloadIfNeeded(); // an account seen before a fault is read again, not served stale
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Method} on {AccountKind} account {AccountId} from {Caller} ({CallerKind}): outside the trust boundary")]
    private static partial void LogForbidden(ILogger logger, string method, AccountKind accountKind, Guid accountId, string? caller, CallerKind callerKind);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The database refused a batch of {OperationCount} operation(s) on {AccountKind} account {AccountId} ({SqlState}); committing its halves apart to isolate the one at fault")]
    private static partial void LogIsolating(ILogger logger, AccountKind accountKind, Guid accountId, int operationCount, string sqlState);

    [LoggerMessage(Level = LogLevel.Error, Message = "The database refused {OperationKind} {RequestId} on {AccountKind} account {AccountId} ({SqlState}); answered as failed, not retryable")]
    private static partial void LogOperationRefusedByDatabase(ILogger logger, Exception exception, string operationKind, Guid? requestId, AccountKind accountKind, Guid accountId, string sqlState);
}
