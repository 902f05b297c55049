using Billing.Storage;

namespace Billing.Accounts;

/// <summary>
/// Hold operations whose id met a stored one (a unique violation of the batch). A placement whose hold id is stored
/// answers with that hold (a retry) or as a conflict; one whose hold id a refusal claimed first answers with that
/// refusal (a copy of the placement refused while this one waited) or as a conflict. A capture whose usage id is
/// stored answers with the hold's receipt when the hold was captured (by another activation); with the refusal that
/// claimed the usage id when a late copy of this capture was refused (a 402 answered while this copy waited); else as a
/// conflict (the usage id belongs to another usage).
/// </summary>
internal static class HoldSettling
{
    public static async Task SettleAsync(HoldStore holds, UsageRecordStore usageRecords, TimeProvider clock, IReadOnlyList<PendingOperation> operations)
    {
        var placements = operations.OfType<PlaceHoldOperation>().Where(o => !o.Settled).ToList();
        var captures = operations.OfType<CaptureHoldOperation>().Where(o => !o.Settled).ToList();
        if (placements.Count == 0 && captures.Count == 0) return;

        var now = clock.GetDatabaseNow();
        var stored = await holds.GetManyAsync(placements.Select(p => p.Placement.Request.HoldId).Concat(captures.Select(c => c.HoldId)).Distinct().ToArray());
        foreach (var placement in placements)
        {
            if (!stored.TryGetValue(placement.Placement.Request.HoldId, out var claim)) continue;
            if (claim.Hold is { } hold) placement.Settle(hold, now);
            else placement.Settle(claim.Refusal!);
        }

        var usageIds = captures.Select(c => c.Capture.UsageId ?? c.HoldId).ToArray();
        var usages = await usageRecords.ReadAsync(usageIds);
        foreach (var capture in captures)
        {
            var usageId = capture.Capture.UsageId ?? capture.HoldId;
            if (stored.TryGetValue(capture.HoldId, out var claim) && claim.Hold?.Capture is { } receipt)
                capture.Settle(BillingResult<HoldCaptureReceipt>.Ok(receipt));
            else if (usages.TryGetValue(usageId, out var answer))
                capture.Settle(answer.Problem is { BillingErrorId: { } errorId } refusal && await holds.IsLateCaptureRefusalAsync(capture.HoldId, errorId)
                    ? BillingResult<HoldCaptureReceipt>.Fail(refusal)
                    : BillingResult<HoldCaptureReceipt>.Fail(UsageIdTaken(capture.HoldId, usageId)));
        }
    }

    /// <summary>A capture whose usage id answers another usage (or another hold's capture).</summary>
    public static BillingProblem UsageIdTaken(Guid holdId, Guid usageId) =>
        new(BillingStatus.HoldConflict, $"Usage id {usageId} was used by another usage; capture hold {holdId} with a new usage id.");
}
