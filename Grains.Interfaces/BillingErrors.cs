namespace Billing;

/// <summary>A stored billing error (for example a refused usage), shown to people by the front end.</summary>
[GenerateSerializer, Immutable, Alias("Billing.BillingErrorView")]
public sealed record BillingErrorView(
    Guid Id,
    string Scope,
    Guid ScopeId,
    string ErrorType,
    string Message,
    string? Details,
    bool Resolved,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ResolvedAt);

/// <summary>The billing errors of one account (scope <c>project</c> or <c>user</c>), newest first.</summary>
[GenerateSerializer, Immutable, Alias("Billing.BillingErrorQuery")]
public sealed record BillingErrorQuery(string Scope, Guid ScopeId, bool? Resolved, int Limit, long? Before);

[GenerateSerializer, Immutable, Alias("Billing.BillingErrorPage")]
public sealed record BillingErrorPage(BillingErrorView[] Items, long? NextBefore);

public static class BillingScopes
{
    public const string Project = "project";
    public const string User = "user";
}

public static class BillingErrorTypes
{
    public const string InsufficientBalance = "insufficient_balance";

    /// <summary>A capture used more than its hold and the payer's available could cover (holds).</summary>
    public const string CaptureShortfall = "capture_shortfall";
}
