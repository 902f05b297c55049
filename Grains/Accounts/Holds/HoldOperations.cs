using Billing.Storage;

namespace Billing.Accounts;

/// <summary>
/// A new hold on this account, decided against its available; a hold id already in the account answers as a retry or a
/// conflict. Only the operation that inserts the hold answers <see cref="HoldPlaced.Created"/>.
/// </summary>
internal sealed class PlaceHoldOperation(HoldPlacement placement) : PendingOperation<BillingResult<HoldPlaced>>
{
    public HoldPlacement Placement { get; } = placement;

    public override string Kind => "hold";

    public override bool RefusedForBalance => !Settled && Result?.Problem?.Status == BillingStatus.InsufficientBalance;

    public override void Decide(LedgerBatch batch)
    {
        var request = Placement.Request;
        if (batch.FindHold(request.HoldId) is { } existing)
        {
            Result = Answer(existing, batch.Now);
            return;
        }

        var (hold, problem) = HoldLedger.Place(batch.State, Placement, batch.Now);
        if (hold is null)
        {
            Result = BillingResult<HoldPlaced>.Fail(problem!);
            return;
        }

        batch.ChangeHold(hold, inserted: true);
        Result = BillingResult<HoldPlaced>.Ok(new HoldPlaced(hold, Created: true));
    }

    public override void Refuse(BillingProblem problem) => Result = BillingResult<HoldPlaced>.Fail(problem);

    /// <summary>The hold id is stored already (a retry, or this id taken by another request): that hold is the answer.</summary>
    public void Settle(HoldView stored, DateTimeOffset now)
    {
        Result = Answer(stored, now);
        Settled = true;
    }

    /// <summary>A refusal of this hold id was stored first (a copy of this placement): it is the answer, as for a usage id.</summary>
    public void Settle(RefusedHoldPlacement refusal)
    {
        Result = BillingResult<HoldPlaced>.Fail(refusal.ProblemFor(Placement.Request));
        Settled = true;
    }

    private BillingResult<HoldPlaced> Answer(HoldView existing, DateTimeOffset now) => existing.SameRequest(Placement.Request)
        ? BillingResult<HoldPlaced>.Ok(new HoldPlaced(existing.AsSeenAt(now), Created: false))
        : BillingResult<HoldPlaced>.Fail(BillingStatus.HoldConflict, $"Hold {existing.HoldId} exists with another request; use a new hold id.");
}

/// <summary>
/// A hold that is not among the account's active holds is decided from the stored copy read before it was queued,
/// valid only while no hold of the account has changed since (<see cref="StoredAt"/>); otherwise the grain reads it
/// again (<see cref="NeedsStored"/>).
/// </summary>
internal abstract class StoredHoldOperation<T>(Guid holdId, HoldView? stored, long storedAt) : PendingOperation<BillingResult<T>>
    where T : class
{
    public Guid HoldId { get; } = holdId;

    public long StoredAt { get; } = storedAt;

    /// <summary>Set when the decision needs the hold as stored now: nothing was written, the grain reads it and submits again.</summary>
    public bool NeedsStored { get; private set; }

    public override void Refuse(BillingProblem problem) => Result = BillingResult<T>.Fail(problem);

    public override void Decide(LedgerBatch batch)
    {
        NeedsStored = false;
        var hold = batch.FindHold(HoldId);
        if (hold is null)
        {
            // A captured or voided hold, or an expired one captured late, never changes again: its stored copy stays true
            // whatever other holds did since it was read. An expired one not captured may still be captured late (by an
            // operation decided before this one), so its copy is only trusted while no hold of the account changed: on a
            // busy account, a retried capture would otherwise read again and again until it gave up (503).
            if (stored is null || (batch.Start.HoldsVersion != StoredAt && !IsFinal(stored)))
            {
                NeedsStored = true;
                Result = BillingResult<T>.Fail(BillingStatus.HoldNotFound, $"Hold {HoldId} was not found.");
                return;
            }

            hold = stored;
        }

        Decide(batch, hold);
    }

    protected abstract void Decide(LedgerBatch batch, HoldView hold);

    private static bool IsFinal(HoldView hold) => hold.Status is HoldStatus.Captured or HoldStatus.Voided || hold.Capture is not null;

    public void Settle(BillingResult<T> stored)
    {
        Result = stored;
        Settled = true;
    }
}

/// <summary>
/// Charges what a held call used, at the pinned price, and ends the hold, in one ledger write: its charge row, its
/// usage record, the hold's new state and, for a shortfall, its one billing error. Capturing again answers with
/// the first receipt. (When credit grants land, the capture's charge draws on grants like a usage charge.)
/// </summary>
internal sealed class CaptureHoldOperation(HoldCapture capture, HoldView? stored, long storedAt)
    : StoredHoldOperation<HoldCaptureReceipt>(capture.HoldId, stored, storedAt)
{
    public HoldCapture Capture { get; } = capture;

    public override string Kind => "capture";

    public override bool RefusedForBalance => !Settled && !NeedsStored && Result?.Problem?.Status == BillingStatus.InsufficientBalance;

    /// <summary>The receipt this batch writes, if any.</summary>
    public HoldCaptureReceipt? Receipt { get; private set; }

    protected override void Decide(LedgerBatch batch, HoldView hold)
    {
        Receipt = null;
        if (hold.Capture is { } first)
        {
            Result = BillingResult<HoldCaptureReceipt>.Ok(first);
            return;
        }

        if (hold.Status == HoldStatus.Voided)
        {
            Result = BillingResult<HoldCaptureReceipt>.Fail(BillingStatus.HoldConflict, $"Hold {hold.HoldId} was voided; it cannot be captured.");
            return;
        }

        var (row, receipt, ended, problem) = HoldLedger.Capture(batch.State, hold, Capture, batch.Now);
        if (row is null)
        {
            Result = BillingResult<HoldCaptureReceipt>.Fail(problem!);
            return;
        }

        if (receipt!.Late && hold.Status == HoldStatus.Active)
        {
            // Captured late before its expiry was recorded: this write records it, with the event the expiry would
            // have written (every expired hold has one), at what the account had available then.
            batch.Events.Add(Billing.Events.BillingEvents.HoldExpired(batch.State, HoldLedger.Available(batch.State, batch.Now), hold.HoldId, hold.Amount, batch.Now));
        }

        batch.Append(row);
        batch.Charges.Add(receipt.ToUsageReceipt());
        batch.ChangeHold(ended!, inserted: false);
        if (receipt.ShortfallErrorId is { } errorId)
        {
            // The shortfall's billing error is stored by this batch's statement, and so is its event (E1).
            batch.Events.Add(Billing.Events.BillingEvents.BillingErrorCreated(batch.State.Kind, batch.State.Id, HoldLedger.Available(batch.State, batch.Now),
                batch.State.Balance, batch.State.Currency, errorId, BillingErrorTypes.CaptureShortfall, batch.Now));
        }

        Result = BillingResult<HoldCaptureReceipt>.Ok(receipt);
        Receipt = receipt;
    }
}

/// <summary>Releases an active hold; voiding again answers with it; a captured hold cannot be voided.</summary>
internal sealed class VoidHoldOperation(Guid holdId, HoldView? stored, long storedAt) : StoredHoldOperation<HoldView>(holdId, stored, storedAt)
{
    public override string Kind => "void";

    protected override void Decide(LedgerBatch batch, HoldView hold)
    {
        if (hold.Capture is not null || hold.Status == HoldStatus.Captured)
        {
            Result = BillingResult<HoldView>.Fail(BillingStatus.HoldConflict, $"Hold {hold.HoldId} was captured; it cannot be voided.");
            return;
        }

        if (!hold.IsHeldAt(batch.Now))
        {
            // Voided already, or expired (recorded or not): nothing is held any more, and it ended once.
            Result = BillingResult<HoldView>.Ok(hold.AsSeenAt(batch.Now));
            return;
        }

        var voided = hold with { Status = HoldStatus.Voided, EndedAt = batch.Now };
        batch.ChangeHold(voided, inserted: false);
        Result = BillingResult<HoldView>.Ok(voided);
    }
}

/// <summary>
/// Records the expiry of the account's holds past their expiry (reads have treated them as released since), each with
/// its <c>hold.expired</c> event in the same write (E1).
/// </summary>
internal sealed class ExpireHoldsOperation : PendingOperation<int>
{
    /// <summary>
    /// Most expiries one write records: after an outage an account may have many thousands due at once, and one
    /// statement for all of them would hold up the writes of every account sharing its transaction. The grain
    /// submits another for the rest (<see cref="AccountGrain.ExpireDueHolds"/>).
    /// </summary>
    public const int MaxPerWrite = 1_000;

    public override string Kind => "hold expiry";

    public override void Refuse(BillingProblem problem) => Result = 0;

    public override void Decide(LedgerBatch batch)
    {
        var expired = 0;
        // Recording an expiry releases nothing more: an expired hold reserves nothing from its expiry on (H2), so every
        // event of this batch names the same available.
        var available = HoldLedger.Available(batch.State, batch.Now);
        foreach (var hold in batch.State.Holds.ExpiredAt(batch.Now).Take(MaxPerWrite).ToList())
        {
            batch.ChangeHold(HoldLedger.Expired(hold), inserted: false);
            batch.Events.Add(Billing.Events.BillingEvents.HoldExpired(batch.State, available, hold.HoldId, hold.Amount, batch.Now));
            expired++;
        }

        Result = expired;
    }
}
