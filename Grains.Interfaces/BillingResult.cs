namespace Billing;

/// <summary>
/// Why a billing call did not do what was asked. Expected outcomes (an insufficient balance, an unknown
/// account, bad input) are values the caller matches on; exceptions are reserved for faults.
/// Append new members at the end only: the numbers travel between silos of different versions.
/// </summary>
[GenerateSerializer]
public enum BillingStatus
{
    InvalidInput = 1,
    AccountNotFound = 2,
    BillingErrorNotFound = 3,
    NoPriceInEffect = 4,
    CurrencyMismatch = 5,
    InsufficientBalance = 6,
    CreatorConflict = 7,
    /// <summary>The account or the silo's ledger writer has too much work queued: nothing was done, retry later.</summary>
    Overloaded = 8,
    /// <summary>The caller may not make this call (DESIGN.md "Trust boundary"): nothing was done.</summary>
    Forbidden = 9,
    /// <summary>No hold has this id (holds).</summary>
    HoldNotFound = 10,
    /// <summary>The hold id is taken by another request, or the hold has ended otherwise (capture after void, void after capture).</summary>
    HoldConflict = 11,
    /// <summary>No account has a grant with this id.</summary>
    GrantNotFound = 12,
    /// <summary>The webhook endpoint id was created with another url or other events.</summary>
    WebhookConflict = 13,
}

/// <summary>
/// A refused call: its status, a message for people, and the billing error stored for it, if any. A hold refused for
/// balance also says the largest <c>maxOutputTokens</c> one account could cover now.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.BillingProblem")]
public sealed record BillingProblem(BillingStatus Status, string Detail, Guid? BillingErrorId = null, long? MaxAffordableOutputTokens = null);

/// <summary>Either a value or the problem that prevented it.</summary>
[GenerateSerializer, Immutable, Alias("Billing.BillingResult`1")]
public sealed record BillingResult<T>(T? Value, BillingProblem? Problem) where T : class
{
    public bool IsOk => Problem is null;

    public static BillingResult<T> Ok(T value) => new(value, null);

    public static BillingResult<T> Fail(BillingStatus status, string detail, Guid? billingErrorId = null) =>
        new(null, new BillingProblem(status, detail, billingErrorId));

    public static BillingResult<T> Fail(BillingProblem problem) => new(null, problem);

    /// <summary>The same outcome with its value mapped; a problem stays as it is.</summary>
    public BillingResult<TOut> Select<TOut>(Func<T, TOut> map) where TOut : class =>
        Problem is null ? new(map(Value!), null) : new(null, Problem);
}
