namespace Billing.Storage;

/// <summary>
/// What is stored under a hold id: the hold, or the refusal of its placement. Exactly one of the two is set; the first
/// one stored is the answer of every copy of the placement (billing_hold's primary key decides which came first).
/// </summary>
public sealed record HoldClaim(HoldView? Hold, RefusedHoldPlacement? Refusal);

/// <summary>
/// A placement refused for insufficient balance, stored under its hold id with its one billing error. It reserves
/// nothing and is never a hold: reads of holds (get, list, capture, void) do not see it. <see cref="Request"/> is as
/// stored, its TTL always set.
/// </summary>
public sealed record RefusedHoldPlacement(HoldRequest Request, Guid BillingErrorId)
{
    /// <summary>The same placement again (a retry): the same hold id and body, the TTL defaulted as stored.</summary>
    public bool SameRequest(HoldRequest request) => request with { TtlSeconds = request.TtlSeconds ?? HoldRequest.DefaultTtlSeconds } == Request;

    /// <summary>What a copy of the placement is answered: its stored refusal, or a conflict when its body differs.</summary>
    public BillingProblem ProblemFor(HoldRequest request) => SameRequest(request)
        ? new BillingProblem(BillingStatus.InsufficientBalance,
            $"Hold {Request.HoldId} was refused for insufficient balance (billing error {BillingErrorId}); a hold id keeps its first answer: " +
            "to try again, place the hold with a new hold id.", BillingErrorId)
        : new BillingProblem(BillingStatus.HoldConflict, $"Hold {Request.HoldId} was refused for another request; use a new hold id.");
}
