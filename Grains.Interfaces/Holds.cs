namespace Billing;

/// <summary>Where a hold is in its life. It ends exactly once: captured, voided or expired (H2).</summary>
[GenerateSerializer]
public enum HoldStatus
{
    Active = 0,
    Captured = 1,
    Voided = 2,
    Expired = 3,
}

/// <summary>
/// Reserve what a call can cost at most: <see cref="InputTokens"/> + <see cref="MaxOutputTokens"/> at the model's
/// price now. Paid by the project when its available covers the whole amount, else by the user (never split);
/// without <see cref="ProjectId"/> by the user alone. <see cref="TtlSeconds"/> 1–86,400, default 900.
/// The same <see cref="HoldId"/> again with the same request answers with the hold; with another, a conflict.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.HoldRequest")]
public sealed record HoldRequest(Guid HoldId, Guid? ProjectId, Guid UserId, Guid ModelId, long InputTokens, long MaxOutputTokens, int? TtlSeconds = null)
{
    public const int DefaultTtlSeconds = 900;
    public const int MaxTtlSeconds = 86_400;
}

/// <summary>Charge what a held call used, at the hold's pinned price; <see cref="UsageId"/> defaults to the hold id.</summary>
[GenerateSerializer, Immutable, Alias("Billing.HoldCapture")]
public sealed record HoldCapture(Guid HoldId, long InputTokens, long OutputTokens, Guid? UsageId = null);

/// <summary>
/// What a capture charged: the usage receipt (<see cref="Cost"/> = the full cost of the tokens used) and how the
/// hold was settled: <see cref="Charged"/> was deducted, <see cref="Released"/> went back to available, and
/// <see cref="Shortfall"/> (= cost − charged) could not be covered (one <c>capture_shortfall</c> billing error).
/// A late capture (of an expired hold) releases nothing.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.HoldCaptureReceipt")]
public sealed record HoldCaptureReceipt(
    Guid UsageId,
    decimal Cost,
    string Currency,
    long InputTokens,
    long OutputTokens,
    PayingAccount DeductedFrom,
    Guid AccountId,
    decimal BalanceAfter,
    decimal QuotaUsed,
    Guid HoldId,
    decimal Held,
    decimal Charged,
    decimal Released,
    decimal Shortfall,
    bool Late,
    Guid? ShortfallErrorId)
{
    /// <summary>As the usage receipt of a usage (what <see cref="IProjectGrain.RecordUserFallback"/> takes); its cost is what was charged.</summary>
    public UsageReceipt ToUsageReceipt() => new(UsageId, Charged, Currency, InputTokens, OutputTokens, DeductedFrom, AccountId, BalanceAfter, QuotaUsed);
}

/// <summary>A hold as stored; <see cref="Status"/> reads <see cref="HoldStatus.Expired"/> once past <see cref="ExpiresAt"/>.</summary>
[GenerateSerializer, Immutable, Alias("Billing.HoldView")]
public sealed record HoldView(
    Guid HoldId,
    HoldStatus Status,
    PayingAccount Payer,
    Guid AccountId,
    Guid? ProjectId,
    Guid UserId,
    Guid ModelId,
    long InputTokens,
    long MaxOutputTokens,
    decimal Amount,
    string Currency,
    decimal InputPricePerMillion,
    decimal OutputPricePerMillion,
    int TtlSeconds,
    DateTimeOffset ExpiresAt,
    DateTimeOffset CreatedAt,
    DateTimeOffset? EndedAt,
    HoldCaptureReceipt? Capture)
{
    /// <summary>Active and not yet past its expiry: what counts as held (a hold past expiry is released at once).</summary>
    public bool IsHeldAt(DateTimeOffset now) => Status == HoldStatus.Active && now < ExpiresAt;

    /// <summary>As a caller sees it at <paramref name="now"/>: an active hold past its expiry reads as expired.</summary>
    public HoldView AsSeenAt(DateTimeOffset now) =>
        Status == HoldStatus.Active && now >= ExpiresAt ? this with { Status = HoldStatus.Expired, EndedAt = ExpiresAt } : this;

    /// <summary>Whether <paramref name="request"/> asks for this same hold (a retry) rather than another under its id.</summary>
    public bool SameRequest(HoldRequest request) =>
        request.HoldId == HoldId && request.ProjectId == ProjectId && request.UserId == UserId && request.ModelId == ModelId
        && request.InputTokens == InputTokens && request.MaxOutputTokens == MaxOutputTokens
        && (request.TtlSeconds ?? HoldRequest.DefaultTtlSeconds) == TtlSeconds;
}

/// <summary>
/// The hold a placement answers with, and whether this call placed it (<see cref="Created"/>) or found it placed by an
/// earlier copy of the same request (a retry, or a copy sent at the same time): what tells a 201 from a 200.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.HoldPlaced")]
public sealed record HoldPlaced(HoldView Hold, bool Created);

/// <summary>
/// A hold asked of one account by <see cref="IUsageGrain"/>, priced: the amount and the price it pins.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.HoldPlacement")]
public sealed record HoldPlacement(HoldRequest Request, decimal Amount, string Currency, decimal InputPricePerMillion, decimal OutputPricePerMillion);

/// <summary>The holds an account pays, newest first; <see cref="Status"/> filters (as seen now).</summary>
[GenerateSerializer, Immutable, Alias("Billing.HoldQuery")]
public sealed record HoldQuery(HoldStatus? Status, int Limit, long? Before);

[GenerateSerializer, Immutable, Alias("Billing.HoldPage")]
public sealed record HoldPage(HoldView[] Items, long? NextBefore);

/// <summary>The hold operations of an account (both kinds). Placing and capturing move money: billing grains only.</summary>
[Alias("Billing.IHoldingAccountGrain")]
public interface IHoldingAccountGrain : IGrainWithGuidKey
{
    [Alias("PlaceHold")]
    Task<BillingResult<HoldView>> PlaceHold(HoldPlacement placement);

    /// <summary>As <see cref="PlaceHold"/>, saying whether this call placed the hold.</summary>
    [Alias("PlaceHoldOnce")]
    Task<BillingResult<HoldPlaced>> PlaceHoldOnce(HoldPlacement placement);

    [Alias("CaptureHold")]
    Task<BillingResult<HoldCaptureReceipt>> CaptureHold(HoldCapture capture);

    [Alias("VoidHold")]
    Task<BillingResult<HoldView>> VoidHold(Guid holdId);

    /// <summary>
    /// Records the expiry of this account's holds that are past their expiry (the number recorded). Open to any
    /// caller: it only writes down what time has already decided, and reads already treat those holds as released.
    /// </summary>
    [Alias("ExpireDueHolds")]
    Task<int> ExpireDueHolds();

    [Alias("ListHolds")]
    Task<BillingResult<HoldPage>> ListHolds(HoldQuery query);
}
