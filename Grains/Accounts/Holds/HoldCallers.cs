namespace Billing.Accounts;

/// <summary>The trust boundary for holds: placing, capturing and voiding come from the billing grains only (via IUsageGrain).</summary>
internal static class HoldCallers
{
    public static bool MovesMoney(string method) =>
        method is nameof(IHoldingAccountGrain.PlaceHold) or nameof(IHoldingAccountGrain.PlaceHoldOnce) or nameof(IHoldingAccountGrain.CaptureHold) or nameof(IHoldingAccountGrain.VoidHold);

    /// <summary>The refusal, typed as the method answers.</summary>
    public static object Forbidden(string method, string detail) => method switch
    {
        nameof(IHoldingAccountGrain.CaptureHold) => BillingResult<HoldCaptureReceipt>.Fail(BillingStatus.Forbidden, detail),
        nameof(IHoldingAccountGrain.PlaceHoldOnce) => BillingResult<HoldPlaced>.Fail(BillingStatus.Forbidden, detail),
        _ => BillingResult<HoldView>.Fail(BillingStatus.Forbidden, detail),
    };
}
