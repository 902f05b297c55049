namespace Billing.Accounts;

/// <summary>A usage charge. Its receipt is also its usage record, written in the same statement as its row.</summary>
internal sealed class ChargeOperation(AccountCharge charge) : PendingOperation<BillingResult<UsageReceipt>>
{
    public AccountCharge Charge { get; } = charge;

    public override string Kind => "charge";

    public override Guid? RequestId => Charge.UsageId;

    public override bool RefusedForBalance => !Settled && Result?.Problem?.Status == BillingStatus.InsufficientBalance;

    /// <summary>The receipt of a charge this batch writes.</summary>
    public UsageReceipt? Receipt { get; private set; }

    public override void Decide(LedgerBatch batch)
    {
        Receipt = null;
        // Holds: money an active hold reserves is not spendable (H1).
        if (HoldLedger.RefuseSpend(batch.State, Charge.Currency, Charge.Cost, batch.Now) is { } reserved)
        {
            Result = BillingResult<UsageReceipt>.Fail(reserved);
            return;
        }

        var (row, problem) = AccountLedger.Charge(batch.State, Charge, batch.Now);
        if (row is null)
        {
            Result = BillingResult<UsageReceipt>.Fail(problem!);
            return;
        }

        batch.Append(row);
        var receipt = new UsageReceipt(
            Charge.UsageId, Charge.Cost, Charge.Currency, Charge.InputTokens, Charge.OutputTokens,
            batch.State.Kind == AccountKind.Project ? PayingAccount.Project : PayingAccount.User,
            batch.State.Id, row.BalanceAfter, row.QuotaUsed);
        batch.Charges.Add(receipt);
        Result = BillingResult<UsageReceipt>.Ok(receipt);
        Receipt = receipt;
    }

    public override void Refuse(BillingProblem problem)
    {
        Result = BillingResult<UsageReceipt>.Fail(problem);
        Receipt = null;
    }

    /// <summary>The usage id already has an answer in the database (this or another account gave it).</summary>
    public void Settle(BillingResult<UsageReceipt> stored)
    {
        Result = stored;
        Receipt = null;
        Settled = true;
    }
}

/// <summary>A top-up, idempotent by credit id; it resolves the account's open insufficient-balance errors.</summary>
internal sealed class CreditOperation(AccountCredit credit) : PendingOperation<BillingResult<AccountView>>
{
    public AccountCredit Credit { get; } = credit;

    public override string Kind => "credit";

    public override Guid? RequestId => Credit.CreditId;

    public override void Refuse(BillingProblem problem) => Result = BillingResult<AccountView>.Fail(problem);

    public override void Decide(LedgerBatch batch)
    {
        // Top-ups and grants keep apart ids: an open grant's (a scheduled one has no history row yet) is refused here.
        if (Credit.CreditId is { } creditId && batch.State.Grants.Any(g => g.GrantId == creditId))
        {
            Result = BillingResult<AccountView>.Fail(GrantsIdTaken(creditId));
            return;
        }

        var (row, problem) = AccountLedger.Credit(batch.State, Credit, batch.Now);
        if (row is null)
        {
            Result = BillingResult<AccountView>.Fail(problem!);
            return;
        }

        batch.Append(row);
        TopUp(batch);
        Result = BillingResult<AccountView>.Ok(batch.State.ToView());
    }

    /// <summary>A top-up sent with the id of one of the account's grants.</summary>
    public static BillingProblem GrantsIdTaken(Guid creditId) =>
        new(BillingStatus.InvalidInput, $"creditId {creditId} is the id of a grant of this account; a top-up needs an id of its own.");

    /// <summary>A grant sent with the credit id of one of the account's top-ups.</summary>
    public static BillingProblem TopUpsIdTaken(Guid grantId) =>
        new(BillingStatus.InvalidInput, $"grantId {grantId} is the creditId of a top-up of this account; a grant needs an id of its own.");

    private BillingProblem? storedConflict;

    public void Settle() => Settled = true;

    /// <summary>Its credit id is held by a row of another kind (a grant's): answered with <paramref name="problem"/>, nothing written.</summary>
    public void SettleRefused(BillingProblem problem)
    {
        storedConflict = problem;
        Settled = true;
    }

    public override void Complete(AccountState? committed)
    {
        // A credit found already applied answers with the account as it is now.
        if (Settled) Result = storedConflict is { } conflict ? BillingResult<AccountView>.Fail(conflict) : BillingResult<AccountView>.Ok(committed!.ToView());
        base.Complete(committed);
    }
}

/// <summary>
/// Resolves open insufficient-balance errors a top-up left (it resolves at most
/// <see cref="LedgerCommit.MaxErrorsResolvedPerWrite"/>): those created by the top-up, the oldest that many per write.
/// It writes no history row; its write carries the <c>billing_error.resolved</c> events. False when refused (no write).
/// </summary>
internal sealed class ResolveErrorsOperation(DateTimeOffset createdBy) : PendingOperation<bool>
{
    public override string Kind => "billing error resolution";

    public override void Refuse(BillingProblem problem) => Result = false;

    public override void Decide(LedgerBatch batch)
    {
        batch.ResolveErrors(createdBy);
        Result = true;
    }
}

internal sealed class PlanChangeOperation(PlanChange plan) : PendingOperation<BillingResult<AccountView>>
{
    public override string Kind => "plan change";

    public override void Refuse(BillingProblem problem) => Result = BillingResult<AccountView>.Fail(problem);

    public override void Decide(LedgerBatch batch)
    {
        // The plan the account already has (a retried PUT, a periodic sync) changes nothing: a new cycle would give
        // the month's quota a second time.
        if (batch.State.IsPro == plan.IsPro && batch.State.MonthlyQuota == plan.MonthlyQuota)
        {
            Result = BillingResult<AccountView>.Ok(batch.State.ToView());
            return;
        }

        batch.Append(AccountLedger.PlanChange(batch.State, plan, batch.Now), (state, row) => AccountLedger.ApplyPlanChange(state, plan, row));
        Result = BillingResult<AccountView>.Ok(batch.State.ToView());
    }
}

/// <summary>The project's zero-amount row for a usage its user paid; idempotent by usage id.</summary>
internal sealed class UserFallbackOperation(UsageReceipt userReceipt, Guid modelId) : PendingOperation<bool>
{
    private BillingProblem? refusal;

    public Guid UsageId => userReceipt.UsageId;

    public override string Kind => "user-fallback marker";

    public override Guid? RequestId => UsageId;

    public override void Refuse(BillingProblem problem) => refusal = problem;

    public override void Complete(AccountState? committed)
    {
        // This call answers with no value, so a refusal is a retryable fault: the usage's retry writes the marker.
        if (refusal is not null && !Settled) Fail(new BillingUnavailableException(refusal.Detail));
        else base.Complete(committed);
    }

    public override void Decide(LedgerBatch batch)
    {
        refusal = null;
        batch.Append(AccountLedger.UserFallbackMarker(batch.State, userReceipt, modelId, batch.Now));
        Result = true;
    }

    public void Settle() => Settled = true;
}
