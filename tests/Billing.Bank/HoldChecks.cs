using Billing.Testing;

namespace Billing.Bank;

/// <summary>
/// Every hold answer a client received against the database, after every hold has ended (H2–H3 from the client's
/// side; <see cref="HoldInvariants"/> checks them from the database's): a granted hold is stored as answered, at the
/// price of its tokens, paid by the account the rules choose; a refused one is not stored and has the one billing
/// error it names; a capture receipt is the stored hold's and its usage record's; a void ended it; every hold ended
/// exactly once (captured, voided or expired; abandoned ones expired); no hold exists that no client placed.
/// </summary>
public static class HoldChecks
{
    public static void Run(LedgerSnapshot db, IReadOnlyCollection<Op> ops, Action<string> violation)
    {
        var holds = db.Holds.ToDictionary(h => h.HoldId);
        var placements = ops.Where(o => o.Type == OpType.PlaceHold).ToDictionary(o => o.Key);
        var captures = ops.Where(o => o.Type == OpType.CaptureHold).ToLookup(o => o.HoldId);
        var voids = ops.Where(o => o.Type == OpType.VoidHold).ToLookup(o => o.HoldId);
        var errorsByHold = db.HoldErrors.ToLookup(e => e.HoldId);
        var rowsByHold = db.Rows.Where(r => r.HoldId is not null).ToLookup(r => r.HoldId!.Value);
        var claims = db.RefusedHolds.ToDictionary(r => r.HoldId);

        foreach (var op in placements.Values)
        {
            holds.TryGetValue(op.Key, out var hold);
            // Refusals of the placement: not the one a late capture of this hold was refused with (same hold, same error type).
            var lateRefusals = captures[op.Key].Where(c => c.Answer?.Kind == OutcomeKind.Refused).Select(c => c.Answer!.BillingErrorId).ToHashSet();
            var refusals = errorsByHold[op.Key].Where(e => e.Type == "insufficient_balance" && (op.Answer?.Kind != OutcomeKind.Ok || !lateRefusals.Contains(e.Id))).ToList();
            switch (op.Answer?.Kind)
            {
                case OutcomeKind.Ok:
                    CheckGranted(op, hold, refusals, violation);
                    if (hold is not null) CheckEnd(op, hold, captures[op.Key].ToList(), voids[op.Key].ToList(), db, errorsByHold[op.Key].ToList(), rowsByHold[op.Key].ToList(), violation);
                    break;
                case OutcomeKind.Refused:
                    if (hold is not null) violation($"H3 hold refused (402) but stored as {hold.Status} on {hold.Kind} {hold.AccountId}: {op}");
                    if (!claims.TryGetValue(op.Key, out var claim) || claim.BillingErrorId != op.Answer.BillingErrorId)
                        violation($"refused hold's id not claimed by its refusal (claim {claim?.BillingErrorId}, answered {op.Answer.BillingErrorId}): {op}");
                    var scopeId = op.HoldProject ?? op.User;
                    if (refusals.Count != 1 || refusals[0].Id != op.Answer.BillingErrorId || refusals[0].ScopeId != scopeId)
                        violation($"I5 refused hold has {refusals.Count} insufficient_balance errors ({string.Join(", ", refusals.Select(e => $"{e.Id} of {e.ScopeId}"))}), answered {op.Answer.BillingErrorId} of {scopeId}: {op}");
                    if (captures[op.Key].Any(c => c.Answer?.Kind is not null) || voids[op.Key].Any(v => v.Answer?.Kind is not null))
                        violation($"a refused hold was captured or voided: {op}");
                    break;
                case OutcomeKind.NotFound:
                    if (op.HoldProject is null) violation($"personal hold answered 404 for an initialised user: {op}");
                    if (hold is not null || errorsByHold[op.Key].Any()) violation($"hold answered 404 but stored ({hold?.Status}) or with a billing error: {op}");
                    break;
                case null:
                    violation($"hold placement unresolved at check time: {op}");
                    break;
                default:
                    violation($"hold placement answered {op.Answer}: {op}");
                    break;
            }
        }

        foreach (var claim in db.RefusedHolds.Where(r => !placements.ContainsKey(r.HoldId))) violation($"refused hold {claim.HoldId} that no client placed");
        foreach (var hold in db.Holds.Where(h => !placements.ContainsKey(h.HoldId))) violation($"H3 hold {hold.HoldId} ({hold.Status}, {hold.Amount}) that no client placed");
        foreach (var error in db.HoldErrors.Where(e => !placements.ContainsKey(e.HoldId))) violation($"billing error {error.Id} ({error.Type}) of hold {error.HoldId} that no client placed");
    }

    /// <summary>A granted hold: stored as answered, its amount the price of input + maxOutput tokens, its payer chosen by the rules.</summary>
    private static void CheckGranted(Op op, HoldRow? hold, List<HoldErrorRow> refusals, Action<string> violation)
    {
        var a = op.Answer!.Hold;
        if (a is null)
        {
            violation($"hold placed without a hold in the answer: {op}");
            return;
        }

        if (hold is null)
        {
            violation($"H3/I4 acknowledged hold not stored: {op}");
            return;
        }

        var payer = hold.Kind == AccountKind.Project ? "project" : "user";
        if (a.HoldId != op.Key || a.Amount != hold.Amount || a.AccountId != hold.AccountId || a.Payer != payer || (a.ExpiresAt - hold.ExpiresAt).Duration() > TimeSpan.FromMilliseconds(1))
            violation($"I4 hold answered {a} but stored {hold.Kind} {hold.AccountId} amount {hold.Amount} expires {hold.ExpiresAt:O}: {op}");
        if (a.Amount != HoldAgent.CostOf(op.Input, op.Output)) violation($"hold amount {a.Amount} is not the price of its tokens {HoldAgent.CostOf(op.Input, op.Output)}: {op}");
        var expectedAccount = a.Payer == "project" ? op.HoldProject : op.User;
        if (a.AccountId != expectedAccount || (op.HoldProject is null && a.Payer != "user"))
            violation($"hold paid by {a.Payer} {a.AccountId}, which may not pay it: {op}");
        // A refusal of this hold id is stored only when an attempt the client never heard of was refused before a retry was granted.
        if (refusals.Count > 0 && op.ReplayAnswer?.Kind == OutcomeKind.Refused && refusals.All(e => e.Id == op.ReplayAnswer.BillingErrorId)) return; // reported by the replay
        if (refusals.Count > 0 && !op.HadUnknown) violation($"hold granted at its only attempt, yet it has a refusal {refusals[0].Id}: {op}");
    }

    /// <summary>How a granted hold ended, against what its agent was told.</summary>
    private static void CheckEnd(Op place, HoldRow hold, List<Op> captures, List<Op> voids, LedgerSnapshot db, List<HoldErrorRow> errors, List<HistoryRow> rows,
        Action<string> violation)
    {
        if (hold.Status == "active")
        {
            violation($"H2 hold {hold.HoldId} never ended (expires {hold.ExpiresAt:O}, checked at {db.Now:O}): {place}");
            return;
        }

        var captured = captures.SingleOrDefault(c => c.Expect is null);
        var voided = voids.SingleOrDefault(v => v.Expect is null);
        foreach (var probe in captures.Where(c => c.Expect is not null))
        {
            if (db.UsageRecords.ContainsKey(probe.Key)) violation($"H2 a capture after the void was recorded: {probe}");
        }

        if (captured?.Answer is { Kind: OutcomeKind.Ok, Capture: { } receipt })
        {
            CheckReceipt(captured, receipt, hold, db, rows, errors, violation);
        }
        else if (captured?.Answer?.Kind == OutcomeKind.Refused)
        {
            // A late capture its payer could not cover: the hold expired, nothing charged, the one billing error it names.
            if (hold.Status != "expired" || hold.UsageId is not null) violation($"H2 late capture refused, yet hold is {hold.Status} captured by {hold.UsageId}: {captured}");
            var refusedWith = captured!.Answer!.BillingErrorId;
            if (!errors.Any(e => e.Id == refusedWith && e.Type == "insufficient_balance"))
                violation($"I5 late capture refused with billing error {refusedWith}, which hold {hold.HoldId} does not have: {captured}");
            // Its usage id is claimed by that refusal, so no copy of the capture can charge it later.
            if (!db.UsageRecords.TryGetValue(captured.Key, out var claim) || claim.Outcome != "refused" || claim.BillingErrorId != refusedWith)
                violation($"late capture refused, but its usage id {captured.Key} is not claimed by its refusal (stored {claim?.Outcome} {claim?.BillingErrorId}): {captured}");
        }
        else if (captured?.Answer is { } other)
        {
            violation($"capture answered {other}: {captured}");
        }
        else if (voided?.Answer is { Kind: OutcomeKind.Ok, Hold: { } after })
        {
            if (after.Status is not ("voided" or "expired") || hold.Status != after.Status || hold.UsageId is not null)
                violation($"H2 void answered {after.Status}, hold stored {hold.Status} (usage {hold.UsageId}): {voided}");
        }
        else if (voided?.Answer is { } answer)
        {
            violation($"void answered {answer}: {voided}");
        }
        else if (hold.Status != "expired" || hold.UsageId is not null)
        {
            // Abandoned (or its agent never heard back in time): it must have expired by itself, uncaptured.
            violation($"H2 abandoned hold ended {hold.Status} (usage {hold.UsageId}), not expired: {place}");
        }
    }

    private static void CheckReceipt(Op op, CaptureAnswer r, HoldRow hold, LedgerSnapshot db, List<HistoryRow> rows, List<HoldErrorRow> errors, Action<string> violation)
    {
        var usageId = op.DefaultUsageId ? op.HoldId : op.Key;
        var payer = hold.Kind == AccountKind.Project ? "project" : "user";
        var cost = HoldAgent.CostOf(op.Input, op.Output);
        if (r.HoldId != hold.HoldId || r.UsageId != usageId || r.DeductedFrom != payer || r.AccountId != hold.AccountId || r.Held != hold.Amount)
            violation($"capture receipt {r} is not hold {hold.HoldId}'s (usage {usageId}, {payer} {hold.AccountId}, held {hold.Amount}): {op}");
        if (r.Cost != cost) violation($"capture cost {r.Cost} is not the pinned price of its tokens {cost}: {op}");
        if (r.Charged < 0 || r.Charged + r.Shortfall != r.Cost || r.Shortfall < 0) violation($"capture charged {r.Charged} + shortfall {r.Shortfall} != cost {r.Cost}: {op}");
        if (r.Late ? r.Released != 0 || r.Shortfall != 0 : r.Released != Math.Max(0m, r.Held - r.Charged))
            violation($"capture released {r.Released} (late {r.Late}, held {r.Held}, charged {r.Charged}, shortfall {r.Shortfall}): {op}");
        if ((r.Shortfall > 0) != (r.ShortfallErrorId is not null)) violation($"capture shortfall {r.Shortfall} with error {r.ShortfallErrorId}: {op}");
        var planned = op.Plan switch { "below" => r.Cost <= r.Held, "equal" => r.Cost == r.Held, "above" => r.Cost > r.Held, "late" => r.Cost <= r.Held && r.Late, _ => true };
        if (!planned) violation($"capture {op.Plan} the hold cost {r.Cost} against {r.Held}: {op}");

        // The stored hold ended as the receipt says.
        var status = r.Late ? "expired" : "captured";
        if (hold.Status != status || hold.UsageId != r.UsageId || hold.Cost != r.Cost || hold.Charged != r.Charged || hold.Released != r.Released
            || hold.Shortfall != r.Shortfall || hold.Late != r.Late || hold.ShortfallErrorId != r.ShortfallErrorId)
            violation($"I4 capture answered {r} but hold stored {hold}: {op}");
        if (r.ShortfallErrorId is { } errorId && !errors.Any(e => e.Id == errorId && e.Type == "capture_shortfall"))
            violation($"I5 capture shortfall {r.Shortfall} names error {errorId}, not stored: {op}");

        // Its usage record and charge row.
        if (!db.UsageRecords.TryGetValue(r.UsageId, out var record) || record.Outcome != "charged" || record.Cost != r.Charged || record.PaidBy != r.DeductedFrom
            || record.AccountId != r.AccountId || record.BalanceAfter != r.BalanceAfter || record.QuotaUsed != r.QuotaUsed)
            violation($"I4 capture answered {r} but usage record is {record?.ToString() ?? "missing"}: {op}");
        if (rows.Count != 1 || rows[0].UsageId != r.UsageId || rows[0].BalanceAfter != r.BalanceAfter || -rows[0].Amount + rows[0].QuotaUsed != r.Charged)
            violation($"I4 capture answered {r} but {rows.Count} history rows name hold {hold.HoldId}: {string.Join("; ", rows)}: {op}");
    }
}
