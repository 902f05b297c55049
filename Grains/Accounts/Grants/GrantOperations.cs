using Billing.Storage;

namespace Billing.Accounts;

/// <summary>
/// An admin grant, idempotent by grant id: in effect now (a <c>grant_credit</c> row) or scheduled for its
/// effectiveAt (no row until then). A grant id stored before answers with the stored grant.
/// </summary>
internal sealed class GrantOperation(GrantInput input) : PendingOperation<BillingResult<GrantIssued>>
{
    public GrantInput Input { get; } = input;

    public override string Kind => "grant";

    public override Guid? RequestId => Input.GrantId;

    public override void Refuse(BillingProblem problem) => Result = BillingResult<GrantIssued>.Fail(problem);

    public override void Decide(LedgerBatch batch)
    {
        var state = batch.State;
        if (state.Grants.FirstOrDefault(g => g.GrantId == Input.GrantId) is { } existing)
        {
            Result = BillingResult<GrantIssued>.Ok(new GrantIssued(existing.ToView(state.Id, state.Kind), Created: false));
            return;
        }

        var effectiveAt = (Input.EffectiveAt ?? batch.Now).ToDatabasePrecision();
        if (Input.ExpiresAt?.ToDatabasePrecision() <= effectiveAt)
        {
            // Checked on arrival too; decided here against the batch's now, which may have moved on since.
            Result = BillingResult<GrantIssued>.Fail(BillingStatus.InvalidInput, "expiresAt must be after effectiveAt (after now when effectiveAt is not given).");
            return;
        }

        var grant = new CreditGrant(Input.GrantId, Input.Category, Input.Priority, Input.Amount, Input.Amount, state.Currency,
            effectiveAt, Input.ExpiresAt?.ToDatabasePrecision(), GrantStatus.Scheduled, Input.Description, null, batch.Now);
        // Checked now as if it counted now, also for a grant scheduled for later: one the balance cannot hold exactly is refused.
        var active = grant with { Status = GrantStatus.Active };
        if (CreditGrants.CreditRow(state, batch.Now, active) is not { } row)
        {
            Result = BillingResult<GrantIssued>.Fail(BillingStatus.InvalidInput, "amount has more significant digits than the account can hold exactly; use fewer decimals.");
            return;
        }

        if (effectiveAt > batch.Now)
        {
            batch.PutGrant(grant, created: true);
            Result = BillingResult<GrantIssued>.Ok(new GrantIssued(grant.ToView(state.Id, state.Kind), Created: true));
            return;
        }

        batch.Append(row);
        TopUp(batch); // a grant in effect now is a top-up: the account can pay again
        // A grant that expired before it was given still counts for the moment between (credit, then expiry).
        if (active.ExpiresAt is { } expiry && expiry <= batch.Now) CreditGrants.AppendDue(batch);
        var after = batch.State.Grants.FirstOrDefault(g => g.GrantId == Input.GrantId)
            ?? batch.Rows[^1].GrantChanges.Single(c => c.GrantId == Input.GrantId).After;
        Result = BillingResult<GrantIssued>.Ok(new GrantIssued(after.ToView(state.Id, state.Kind), Created: true));
    }

    /// <summary>A copy sent while the first was in flight is a repeat, not the grant's creation (API.md: "200 with the grant").</summary>
    public override Task<BillingResult<GrantIssued>> CopyAnswer() => AsRepeat(Task);

    private static async Task<BillingResult<GrantIssued>> AsRepeat(Task<BillingResult<GrantIssued>> first) =>
        await first is { Value: { Created: true } issued } ? BillingResult<GrantIssued>.Ok(issued with { Created = false }) : await first;

    /// <summary>The grant id is already stored (a retry, or a concurrent grant): answer with the stored grant.</summary>
    public void Settle(BillingResult<GrantIssued> stored)
    {
        Result = stored;
        Settled = true;
    }

    /// <summary>Settles the grant operations whose grant id the database already holds.</summary>
    public static async Task SettleStoredAsync(IReadOnlyList<PendingOperation> operations, GrantStore grants, AccountTable table, Guid accountId)
    {
        foreach (var operation in operations.OfType<GrantOperation>())
        {
            if (await grants.FindAsync(operation.Input.GrantId) is not var (grant, kind, owner)) continue;
            operation.Settle(kind == table.Kind && owner == accountId
                ? BillingResult<GrantIssued>.Ok(new GrantIssued(grant.ToView(owner, kind), Created: false))
                : BillingResult<GrantIssued>.Fail(BillingStatus.InvalidInput, $"grantId {operation.Input.GrantId} is already a grant of another account."));
        }
    }
}

/// <summary>
/// Takes back what is left of a grant: a <c>grant_voided</c> row (−remaining), or no row for a grant not yet in effect.
/// Answers null when the grant ended before this batch (in the write that was in flight when the void was queued):
/// the grain answers it as stored, since the account no longer holds ended grants.
/// </summary>
internal sealed class VoidGrantOperation(Guid grantId) : PendingOperation<BillingResult<GrantView>?>
{
    public override string Kind => "grant void";

    public override Guid? RequestId => grantId;

    public override void Refuse(BillingProblem problem) => Result = BillingResult<GrantView>.Fail(problem);

    public override void Decide(LedgerBatch batch)
    {
        var state = batch.State;
        var grant = state.Grants.FirstOrDefault(g => g.GrantId == grantId);
        if (grant is null)
        {
            // It ended while this waited, so there is nothing left to take: in this batch (expired as it opened,
            // depleted or voided before this), answered as this batch leaves it; or in a batch committed since (null).
            var ended = batch.Rows.SelectMany(r => r.GrantChanges).LastOrDefault(c => c.GrantId == grantId)?.After
                ?? batch.GrantsWithoutRow.LastOrDefault(g => g.Grant.GrantId == grantId).Grant;
            Result = ended is null ? null : BillingResult<GrantView>.Ok(ended.ToView(state.Id, state.Kind));
            return;
        }

        if (grant.Status == GrantStatus.Scheduled)
        {
            var voided = grant with { Remaining = 0m, Status = GrantStatus.Voided };
            batch.PutGrant(voided, created: false);
            Result = BillingResult<GrantView>.Ok(voided.ToView(state.Id, state.Kind));
            return;
        }

        if (CreditGrants.VoidRow(state, batch.Now, grant) is not { } row)
        {
            // Only a balance that an older version shortened below the grant's decimals (CreditGrants.CanGiveBack) gets here.
            Result = BillingResult<GrantView>.Fail(BillingStatus.InvalidInput,
                $"The balance cannot give back what is left of grant {grantId} ({grant.Remaining}) exactly; nothing was changed.");
            return;
        }

        batch.Append(row);
        Result = BillingResult<GrantView>.Ok(row.GrantChanges[0].After.ToView(state.Id, state.Kind));
    }
}

/// <summary>
/// Nothing of its own: it makes the account open a batch, which writes what time has made due
/// (<see cref="CreditGrants.AppendDue"/>). Used by the grant clock and by reads.
/// </summary>
internal sealed class GrantClockOperation : PendingOperation<bool>
{
    public override string Kind => "grant clock";

    public override void Refuse(BillingProblem problem) => Result = false;

    public override void Decide(LedgerBatch batch) => Result = true;
}
