namespace Billing.Accounts;

/// <summary>The state a group-commit batch is deciding against, and what it will write.</summary>
internal sealed class LedgerBatch(AccountState start, DateTimeOffset now)
{
    public AccountState State { get; private set; } = start;

    public DateTimeOffset Now { get; } = now;

    public List<LedgerRow> Rows { get; } = [];

    public List<UsageReceipt> Charges { get; } = [];

    public bool ResolveInsufficientBalanceErrors { get; set; }

    public void Append(LedgerRow row, Func<AccountState, LedgerRow, AccountState>? apply = null)
    {
        Rows.Add(row);
        State = (apply ?? AccountLedger.Apply)(State, row);
    }
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

    /// <summary>What it is, for logs: "charge", "credit", …</summary>
    public abstract string Kind { get; }

    /// <summary>The caller's idempotency id (usage id or credit id), for logs; null when it has none.</summary>
    public virtual Guid? RequestId => null;

    public abstract void Decide(LedgerBatch batch);

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
}
