namespace Billing.Storage;

/// <summary>
/// What is stored under a hold id: the hold, or the refusal of its placement. Exactly one of the two is set; the first
/// one stored is the answer of every copy of the placement (billing_hold's primary key decides which came first).
/// </summary>
public sealed record HoldClaim(HoldView? Hold, RefusedHoldPlacement? Refusal);

/// <summary>
/// A placement refused for insufficient balance, stored under its hold id with its one billing error. It reserves
/// nothing and is never a hold: reads of holds (get, list, capture, void) do not see it.
/// </summary>
public sealed record RefusedHoldPlacement(HoldRequest Request, Guid BillingErrorId)
{
    /// <summary>The same placement again (a retry): the same hold id and body, as <see cref="HoldView.SameRequest"/>.</summary>
    public bool SameRequest(HoldRequest request) =>
        request.HoldId == Request.HoldId && request.ProjectId == Request.ProjectId && request.UserId == Request.UserId
        && request.ModelId == Request.ModelId && request.InputTokens == Request.InputTokens && request.MaxOutputTokens == Request.MaxOutputTokens
        && (request.TtlSeconds ?? HoldRequest.DefaultTtlSeconds) == (Request.TtlSeconds ?? HoldRequest.DefaultTtlSeconds);

    /// <summary>What a copy of the placement is answered: its stored refusal, or a conflict when its body differs.</summary>
    public BillingProblem ProblemFor(HoldRequest request, long? maxAffordableOutputTokens = null) => SameRequest(request)
        ? new BillingProblem(BillingStatus.InsufficientBalance,
            $"Hold {Request.HoldId} was refused for insufficient balance (billing error {BillingErrorId}); a hold id keeps its first answer: " +
            "to try again, place the hold with a new hold id.", BillingErrorId, maxAffordableOutputTokens)
        : new BillingProblem(BillingStatus.HoldConflict, $"Hold {Request.HoldId} was refused for another request; use a new hold id.");
}
