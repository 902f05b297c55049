using Billing.Storage;

namespace Billing.Accounts;

/// <summary>The state a group-commit batch is deciding against, and what it will write.</summary>
internal sealed class LedgerBatch(AccountState start, DateTimeOffset now)
{
    /// <summary>The committed account the batch was decided against; its version is the one the write expects.</summary>
    public AccountState Start { get; } = start;

    /// <summary>The account after the rows appended so far.</summary>
    public AccountState State { get; private set; } = start;

    public DateTimeOffset Now { get; } = now;

    public List<LedgerRow> Rows { get; } = [];

    public List<UsageReceipt> Charges { get; } = [];

    /// <summary>Whether the batch resolves the account's open insufficient-balance errors (a top-up, or what one left).</summary>
    public bool ResolveInsufficientBalanceErrors { get; private set; }

    /// <summary>When set, only errors created by then are resolved (what a top-up left); a top-up itself resolves any.</summary>
    public DateTimeOffset? ResolveErrorsCreatedBy { get; private set; }

    /// <summary>Resolves open insufficient-balance errors, those created by <paramref name="createdBy"/> when given; in one batch the widest asked wins.</summary>
    public void ResolveErrors(DateTimeOffset? createdBy)
    {
        // One batch writes one bound: none (a top-up's) covers any other, and the later of two covers the earlier.
        if (!ResolveInsufficientBalanceErrors) ResolveErrorsCreatedBy = createdBy;
        else if (createdBy is null || ResolveErrorsCreatedBy is null) ResolveErrorsCreatedBy = null;
        else if (createdBy > ResolveErrorsCreatedBy) ResolveErrorsCreatedBy = createdBy;
        ResolveInsufficientBalanceErrors = true;
    }

    /// <summary>The holds this batch places or ends (Holds/HoldChanges.cs); each moves the account's holds version.</summary>
    public HoldChanges Holds { get; } = new();

    /// <summary>Grant changes that have no history row: a grant scheduled for later, or voided before it counted.</summary>
    public List<(CreditGrant Grant, bool Created)> GrantsWithoutRow { get; } = [];

    /// <summary>Whether the batch has anything to write: rows, hold changes, grant changes or errors to resolve (all but rows may write no row).</summary>
    public bool HasWrites => Rows.Count > 0 || Holds.Count > 0 || GrantsWithoutRow.Count > 0 || ResolveInsufficientBalanceErrors;

    /// <summary>A hold as this batch leaves it: changed here, else active in the account; null when neither.</summary>
    public HoldView? FindHold(Guid holdId) => Holds.Find(holdId) ?? State.Holds.Find(holdId);

    /// <summary>Records a hold's new state: the account's active holds follow it, and the batch writes it.</summary>
    public void ChangeHold(HoldView hold, bool inserted)
    {
        State = HoldLedger.WithHold(State, hold);
        Holds.Record(hold, inserted);
    }

    /// <summary>Events the batch's changes cause (balance alerts, hold and grant expiries), written by the same statement (E1).</summary>
    public List<Billing.Events.BillingEventRow> Events { get; } = [];

    /// <summary>The open usage hours the batch's usage rows closed, written into <c>usage_hourly</c> (<see cref="UsageRollup"/>).</summary>
    public List<UsageHourTotal> ClosedUsageHours { get; } = [];

    public void Append(LedgerRow row, Func<AccountState, LedgerRow, AccountState>? apply = null)
    {
        Rows.Add(row);
        State = UsageRollup.Add((apply ?? AccountLedger.Apply)(State, row), row, ClosedUsageHours);
    }

    /// <summary>Records a grant change that moves no money (so no history row).</summary>
    public void PutGrant(CreditGrant grant, bool created)
    {
        GrantsWithoutRow.Add((grant, created));
        State = State with { Grants = CreditGrants.Put(State.Grants, grant) };
    }

    /// <summary>The statement that writes this batch, if the account is still at the version it was decided against.</summary>
    public LedgerCommit ToCommit() => new(State, Start.Version, Rows, Charges, ResolveInsufficientBalanceErrors, Holds.ToWrites(Start.HoldsVersion),
        new Billing.Events.LedgerEvents(Events, Billing.Events.BillingEvents.Available(State, Now), State.Balance, State.Currency),
        GrantWrites.From(Rows, GrantsWithoutRow), ClosedUsageHours, ResolveErrorsCreatedBy);
}

/// <summary>
/// A request waiting for the account's next commit. It is decided in arrival order against the state the earlier
/// requests leave, and answered only once the batch holding its row is committed (I4).
/// </summary>
internal abstract class PendingOperation
{
    public long StartTimestamp { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>Set when the database already holds this operation's effect: it is answered without a write.</summary>
    public bool Settled { get; protected set; }

    private DateTimeOffset? toppedUpAt;

    /// <summary>
    /// When this operation topped the account up, resolving its open insufficient-balance errors (its batch's now);
    /// null when it did not, or when the database already held it (the first copy's caller finishes that).
    /// </summary>
    public DateTimeOffset? ToppedUpAt => Settled ? null : toppedUpAt;

    /// <summary>What it is, for logs: "charge", "credit", …</summary>
    public abstract string Kind { get; }

    /// <summary>
    /// The caller's idempotency id (usage id or credit id); null when it has none. While an operation is queued or
    /// being written, another of the same kind with this id shares its answer (<see cref="GroupCommit.Submit{T}"/>).
    /// </summary>
    public virtual Guid? RequestId => null;

    /// <summary>
    /// Decided (again, on a retry) as refused for lack of balance: a refusal writes nothing, so the group commit
    /// checks the stored version before answering it.
    /// </summary>
    public virtual bool RefusedForBalance => false;

    /// <summary>
    /// Decides this operation against <see cref="LedgerBatch.State"/> and appends its row, if any. Synchronous on
    /// purpose: the group commit decides a whole batch without yielding the account's thread.
    /// </summary>
    public abstract void Decide(LedgerBatch batch);

    /// <summary>A top-up: the account can pay again, so the batch resolves its open insufficient-balance errors.</summary>
    protected void TopUp(LedgerBatch batch)
    {
        batch.ResolveErrors(createdBy: null);
        toppedUpAt = batch.Now;
    }

    /// <summary>Refused after it was decided (the writer is full): its decision is not written, so it resolves no errors.</summary>
    internal void ForgetTopUp() => toppedUpAt = null;

    /// <summary>Answers the caller that nothing was done (the account or the writer is overloaded); no write follows.</summary>
    public abstract void Refuse(BillingProblem problem);

    /// <summary>Answers the caller once the batch is committed; <paramref name="committed"/> is the account after it.</summary>
    public abstract void Complete(AccountState? committed);

    public abstract void Fail(Exception exception);
}

internal abstract class PendingOperation<T> : PendingOperation
{
    private readonly TaskCompletionSource<T> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<T> Task => completion.Task;

    protected T? Result { get; set; }

    public override void Complete(AccountState? committed) => completion.TrySetResult(Result!);

    public override void Fail(Exception exception) => completion.TrySetException(exception);

    /// <summary>The answer of a copy that arrived while this operation was queued or being written (same id).</summary>
    public virtual Task<T> CopyAnswer() => Task;
}

/// <summary>
/// Not a ledger operation but a step the group commit runs alone, between two batches (<see cref="GroupCommit"/>):
/// no batch is decided or written while it runs, and the ones queued after it are decided after it.
/// </summary>
internal sealed class StepBetweenWrites(string kind, Func<AccountState?, Task> run) : PendingOperation<bool>
{
    public override string Kind => kind;

    public Task RunAsync(AccountState? committed) => run(committed);

    public override void Decide(LedgerBatch batch) => throw new InvalidOperationException($"{kind} is not decided into a batch.");

    public override void Refuse(BillingProblem problem) => Fail(new BillingUnavailableException(problem.Detail));

    public override void Complete(AccountState? committed)
    {
        Result = true;
        base.Complete(committed);
    }
}
