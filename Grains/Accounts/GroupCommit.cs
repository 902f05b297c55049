using Billing.Storage;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Billing.Accounts;

/// <summary>
/// What <see cref="GroupCommit"/> needs from the account it writes: its stored ledger, its rules for opening a batch,
/// and hooks for what the account keeps or counts. <see cref="StoredAccountLedger"/> is the PostgreSQL one.
/// </summary>
internal interface IAccountLedgerPort
{
    /// <summary>
    /// A batch against <paramref name="committed"/>: its "now", and any row that precedes every operation (a cycle
    /// reset). Synchronous, like every step of a decision.
    /// </summary>
    LedgerBatch Open(AccountState committed);

    /// <summary>
    /// Writes a batch in one statement: true when committed, false when the account was no longer at the expected
    /// version (nothing written). Throws <see cref="PostgresException"/> when the database refused it (nothing
    /// written), <see cref="LedgerWriterFullException"/> when the writer is saturated (nothing written), any other
    /// exception when the outcome is unknown.
    /// </summary>
    Task<bool> WriteAsync(LedgerCommit commit);

    /// <summary>The account as stored; null when it does not exist.</summary>
    Task<AccountState?> LoadAsync();

    /// <summary>The stored account's version, without loading it.</summary>
    Task<StoredVersion> ReadVersionAsync();

    /// <summary>Settles the operations whose id already has its effect stored (they are answered without a write).</summary>
    Task SettleStoredAsync(IReadOnlyList<PendingOperation> operations);

    /// <summary>A batch was committed; called before its operations are answered (receipts to remember, metrics).</summary>
    void OnCommitted(LedgerBatch written, IReadOnlyList<PendingOperation> decided);

    /// <summary>An operation is refused as <see cref="BillingStatus.Overloaded"/> (metrics).</summary>
    void OnRefused(PendingOperation operation, BillingProblem problem);

    /// <summary>An operation was decided into <paramref name="batch"/> (the events its change causes are added here).</summary>
    void OnDecided(LedgerBatch batch)
    {
    }
}

/// <summary>
/// The account's group commit: the only path by which its operations reach the ledger. Contract:
/// <list type="bullet">
/// <item><b>One thread.</b> Every member is called on the account's single thread (the grain's scheduler), so
/// nothing here locks.</item>
/// <item><b>Decide synchronously, in arrival order.</b> Operations are decided in the order they were submitted,
/// each against the state the earlier ones leave. <b>No decision spans an await</b>: <see cref="Decide"/> reads
/// <see cref="Committed"/> and builds the whole batch in one synchronous call (<see cref="PendingOperation.Decide"/>
/// and <see cref="IAccountLedgerPort.Open"/> are synchronous by signature), and the batch carries the version it was
/// decided against as the write's expected version, so a decision is never made against a state another await
/// may have changed.</item>
/// <item><b>One batch at a time.</b> While a write is in flight, new operations queue; the next write takes them
/// together, at most <see cref="MaxBatch"/> per statement.</item>
/// <item><b>Answer after commit.</b> A caller's task completes only once the statement holding its row has
/// committed (or with the refusal or fault that means nothing of it was written, or that its outcome is unknown).</item>
/// <item><b>Reload on conflict.</b> A version conflict, a stored id or a fault of unknown outcome marks the
/// committed state stale; it is reloaded before the next decision or read (<see cref="ReloadIfNeeded"/>). A charge
/// refused for balance writes nothing, so no version guard would notice a stale state: the stored version is read
/// first.</item>
/// <item><b>Failure isolation.</b> A deterministic refusal by the database (SQLSTATE class 22/23) is narrowed
/// down by committing halves until the operation at fault fails alone.</item>
/// <item><b>Bounded.</b> Beyond the queue limit an operation is refused at once (<see cref="BillingStatus.Overloaded"/>),
/// and so is a batch the silo's writer has no room for; a duplicate id in flight shares the first's answer.</item>
/// </list>
/// </summary>
internal sealed partial class GroupCommit(IAccountLedgerPort ledger, AccountTable table, Guid accountId, int queueLimit, ILogger logger)
{
    /// <summary>Most operations one statement carries; a longer queue goes in several round trips.</summary>
    public const int MaxBatch = 512;

    /// <summary>Version conflicts or stored-id retries in a row before a batch gives up (as a fault).</summary>
    public const int MaxAttempts = 8;

    private readonly Queue<PendingOperation> queue = new();
    // A retry (or a duplicate) of a request still queued or being written waits for, and shares, the first one's
    // answer: two rows with one id in one statement would violate its own unique index and fail the whole batch.
    private readonly Dictionary<(Type Kind, Guid Id), PendingOperation> inFlight = [];
    private Task? writing;
    private Task? reloading;
    private bool reloadNeeded;

    /// <summary>
    /// The committed account; null when it was never initialised. Only this class moves it, except for the writes
    /// that happen outside the loop: loading at activation and creating the account.
    /// </summary>
    public AccountState? Committed { get; set; }

    /// <summary>
    /// Queues an operation and answers with its task, which completes after its commit. A duplicate id in flight
    /// answers with the first one's task; a full queue answers at once with <see cref="BillingStatus.Overloaded"/>.
    /// </summary>
    public Task<T> Submit<T>(PendingOperation<T> operation)
    {
        var key = operation.RequestId is { } id ? (operation.GetType(), id) : default((Type, Guid)?);
        if (key is { } k && inFlight.TryGetValue(k, out var first)) return ((PendingOperation<T>)first).CopyAnswer();

        if (queue.Count >= queueLimit)
        {
            Refuse(operation, new BillingProblem(BillingStatus.Overloaded,
                $"The {table.Scope} account {accountId} has too many requests waiting; nothing was done. Retry later with the same id."));
            operation.Complete(Committed);
            return operation.Task;
        }

        if (key is { } added) inFlight[added] = operation;
        queue.Enqueue(operation);
        if (writing is null || writing.IsCompleted) writing = WriteQueued();
        return operation.Task;
    }

    /// <summary>
    /// Reloads the account when a write's outcome is unknown (or another activation wrote); concurrent callers
    /// (a read and the writer loop) share one reload.
    /// </summary>
    public Task ReloadIfNeeded()
    {
        if (!reloadNeeded) return Task.CompletedTask;
        if (reloading is { IsCompleted: false }) return reloading;
        return reloading = Reload();

        async Task Reload()
        {
            Committed = await ledger.LoadAsync();
            reloadNeeded = false;
        }
    }

    /// <summary>
    /// Reloads the account when its stored versions are not the ones in memory: another activation wrote it (during a
    /// membership change there can be two). Only while no write is in flight: a write settles it by itself, its guard
    /// failing on a stale state and reloading.
    /// </summary>
    public async Task ReloadIfChangedElsewhere()
    {
        if (Committed is not { } committed || writing is { IsCompleted: false } || reloadNeeded) return;
        var stored = await ledger.ReadVersionAsync();
        if (writing is { IsCompleted: false } || !ReferenceEquals(Committed, committed)) return;
        if (stored == StoredVersion.Of(committed)) return;
        logger.LogWarning("{AccountKind} account {AccountId} was changed by another activation; reloading", table.Kind, accountId);
        reloadNeeded = true;
        await ReloadIfNeeded();
    }

    private async Task WriteQueued()
    {
        while (queue.Count > 0)
        {
            if (queue.Peek() is StepBetweenWrites step)
            {
                queue.Dequeue();
                await RunBetweenWrites(step);
                continue;
            }

            var batch = new List<PendingOperation>(Math.Min(queue.Count, MaxBatch));
            while (queue.Count > 0 && batch.Count < MaxBatch && queue.Peek() is not StepBetweenWrites) batch.Add(queue.Dequeue());
            try
            {
                await CommitIsolating(batch);
            }
            catch (Exception exception)
            {
                // A fault (database unreachable, unknown commit outcome): the callers get the exception and retry
                // with their ids; what was committed, if anything, is reloaded before the next decision or read.
                logger.LogError(exception, "Commit of {OperationCount} operation(s) on {AccountKind} account {AccountId} failed", batch.Count, table.Kind, accountId);
                reloadNeeded = true;
                foreach (var operation in batch) operation.Fail(exception);
            }
            finally
            {
                foreach (var operation in batch)
                {
                    if (operation.RequestId is { } id) inFlight.Remove((operation.GetType(), id));
                }
            }
        }
    }

    /// <summary>
    /// A step that must see no write in flight and let none start until it ends (changing what batches are judged
    /// against, such as the alert thresholds): it runs in arrival order between two batches, on the committed state.
    /// </summary>
    private async Task RunBetweenWrites(StepBetweenWrites step)
    {
        try
        {
            await ReloadIfNeeded();
            await step.RunAsync(Committed);
            step.Complete(Committed);
        }
        catch (Exception exception)
        {
            // Its outcome may be unknown (a save whose answer was lost): reload before the next decision, so the
            // account judges its writes against what is stored.
            logger.LogError(exception, "{Step} on {AccountKind} account {AccountId} failed", step.Kind, table.Kind, accountId);
            reloadNeeded = true;
            step.Fail(exception);
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
                LogIsolating(logger, table.Kind, accountId, pending.Count, exception.SqlState);
                var half = batch.Count / 2;
                await CommitIsolating(batch[..half]);
                await CommitIsolating(batch[half..]);
                return;
            }

            foreach (var operation in pending)
            {
                LogOperationRefusedByDatabase(logger, exception, operation.Kind, operation.RequestId, table.Kind, accountId, exception.SqlState);
                operation.Fail(new BillingOperationFailedException(
                    $"The {operation.Kind} {operation.RequestId?.ToString() ?? "request"} could not be recorded on {table.Scope} account {accountId}; " +
                    "retrying will not help. Report it with its id."));
            }

            foreach (var operation in batch.Where(o => o.Settled)) operation.Complete(Committed);
        }
    }

    /// <summary>Data exceptions (22…) and integrity violations (23…): the same statement would fail again.</summary>
    private static bool IsDeterministic(PostgresException exception) =>
        exception.SqlState.StartsWith("22", StringComparison.Ordinal) || exception.SqlState.StartsWith("23", StringComparison.Ordinal);

    /// <summary>
    /// Decides the batch's unsettled operations and writes them, until they are committed, refused or settled; then
    /// answers every operation of the batch. Each attempt decides afresh against the state committed at that point.
    /// </summary>
    private async Task CommitBatch(List<PendingOperation> batch)
    {
        var versionCheckedBeforeRefusing = false;
        for (var attempt = 1; ; attempt++)
        {
            await ReloadIfNeeded();

            var pending = batch.Where(o => !o.Settled).ToList();
            var decided = Decide(pending);
            if (!versionCheckedBeforeRefusing && pending.Any(o => o.RefusedForBalance))
            {
                // A refusal writes nothing, so no version guard would notice a stale state: before refusing, make
                // sure no other activation has moved the account on: a top-up it took (version), or a hold it voided
                // or expired (holds_seq alone). The decisions stay valid across this await only because the versions
                // it reads are the ones they were made against.
                versionCheckedBeforeRefusing = true;
                if (await ledger.ReadVersionAsync() != StoredVersion.Of(decided.Start))
                {
                    logger.LogWarning("{AccountKind} account {AccountId} was changed by another activation; reloading before refusing", table.Kind, accountId);
                    reloadNeeded = true;
                    continue;
                }
            }

            if (decided.HasWrites)
            {
                bool committed;
                try
                {
                    committed = await ledger.WriteAsync(decided.ToCommit());
                }
                catch (LedgerWriterFullException)
                {
                    // The silo's writer is saturated: refuse at once, nothing was queued or written.
                    var problem = new BillingProblem(BillingStatus.Overloaded, "The billing database is behind; nothing was done. Retry later with the same id.");
                    foreach (var operation in pending) Refuse(operation, problem);
                    foreach (var operation in batch) operation.Complete(Committed);
                    return;
                }
                catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.UniqueViolation && attempt < MaxAttempts)
                {
                    // A usage id or credit id of this batch already has its effect stored (a retry, or another
                    // account or activation got there first): answer those from the database, decide the rest again.
                    logger.LogInformation("Batch on {AccountKind} account {AccountId} hit stored id ({Constraint}); settling duplicates", table.Kind, accountId, exception.ConstraintName);
                    await ledger.SettleStoredAsync(pending);
                    reloadNeeded = true;
                    continue;
                }

                if (!committed)
                {
                    // Nothing of this batch was written, so it is safe to send again: a 503 naming the id, not a 500.
                    if (attempt >= MaxAttempts)
                        throw new BillingUnavailableException($"{table.Kind} account {accountId} was being written by another activation ({attempt} version conflicts in a row); nothing was done. Retry with the same id.");
                    // Another activation of this account wrote first (it happens during membership changes).
                    logger.LogWarning("Version conflict on {AccountKind} account {AccountId} at version {Version}; reloading", table.Kind, accountId, decided.Start.Version);
                    reloadNeeded = true;
                    continue;
                }

                Committed = decided.State;
                ledger.OnCommitted(decided, pending);
            }

            foreach (var operation in batch) operation.Complete(Committed);
            return;
        }
    }

    /// <summary>
    /// The decision step, synchronous by signature: it reads <see cref="Committed"/> and decides every operation in
    /// arrival order, each against the state the earlier ones leave, without yielding the thread in between.
    /// </summary>
    private LedgerBatch Decide(List<PendingOperation> operations)
    {
        var batch = ledger.Open(Committed ?? throw new InvalidOperationException($"{table.Kind} account {accountId} is not stored; nothing to decide against."));
        foreach (var operation in operations)
        {
            operation.Decide(batch);
            ledger.OnDecided(batch);
        }

        return batch;
    }

    private void Refuse(PendingOperation operation, BillingProblem problem)
    {
        operation.Refuse(problem);
        operation.ForgetTopUp(); // refused unwritten: whatever it decided, it topped nothing up
        ledger.OnRefused(operation, problem);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The database refused a batch of {OperationCount} operation(s) on {AccountKind} account {AccountId} ({SqlState}); committing its halves apart to isolate the one at fault")]
    private static partial void LogIsolating(ILogger logger, AccountKind accountKind, Guid accountId, int operationCount, string sqlState);

    [LoggerMessage(Level = LogLevel.Error, Message = "The database refused {OperationKind} {RequestId} on {AccountKind} account {AccountId} ({SqlState}); answered as failed, not retryable")]
    private static partial void LogOperationRefusedByDatabase(ILogger logger, Exception exception, string operationKind, Guid? requestId, AccountKind accountKind, Guid accountId, string sqlState);
}
