namespace Billing;

[GenerateSerializer]
public enum AccountKind
{
    User = 0,
    Project = 1,
}

/// <summary>
/// An account as callers see it. <see cref="Version"/> is the sequence number of its newest history row.
/// <see cref="Held"/> is the sum of its active holds; <see cref="Available"/> = balance + quota left − held, never below 0.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.AccountView")]
public sealed record AccountView(
    Guid Id,
    AccountKind Kind,
    Guid? CreatorId,
    decimal Balance,
    string Currency,
    bool InitialCreditGranted,
    bool IsPro,
    decimal MonthlyQuota,
    decimal MonthUsed,
    DateTimeOffset? CycleStart,
    DateTimeOffset? CycleEnd,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    long Version,
    decimal Held = 0m,
    decimal Available = 0m);

/// <summary>The account after an initialisation; <see cref="Created"/> is false when it already existed.</summary>
[GenerateSerializer, Immutable, Alias("Billing.AccountInitialized")]
public sealed record AccountInitialized(AccountView Account, bool Created);

/// <summary>A top-up. <see cref="CreditId"/> makes it idempotent: a repeated id credits nothing more.</summary>
[GenerateSerializer, Immutable, Alias("Billing.AccountCredit")]
public sealed record AccountCredit(decimal Amount, string Reason, Guid? CreditId);

/// <summary>A plan change; it starts a new quota cycle from now.</summary>
[GenerateSerializer, Immutable, Alias("Billing.PlanChange")]
public sealed record PlanChange(bool IsPro, decimal MonthlyQuota);

/// <summary>Which history rows to read: newest first, before the sequence number <see cref="Before"/> when given.</summary>
[GenerateSerializer, Immutable, Alias("Billing.HistoryQuery")]
public sealed record HistoryQuery(int Limit, long? Before);

/// <summary>One ledger row. Balance = sum of <see cref="Amount"/>; monthUsed = sum of <see cref="QuotaUsed"/>.</summary>
[GenerateSerializer, Immutable, Alias("Billing.HistoryEntry")]
public sealed record HistoryEntry(
    Guid Id,
    long Sequence,
    decimal Amount,
    decimal QuotaUsed,
    string Currency,
    string Reason,
    decimal BalanceAfter,
    decimal MonthUsedAfter,
    Guid? UsageId,
    Guid? UserId,
    Guid? ProjectId,
    Guid? ModelId,
    long? InputTokens,
    long? OutputTokens,
    Guid? CreditId,
    string? Details,
    DateTimeOffset CreatedAt,
    Guid? HoldId = null,
    GrantDraw[]? Grants = null);

[GenerateSerializer, Immutable, Alias("Billing.HistoryPage")]
public sealed record HistoryPage(HistoryEntry[] Items, long? NextBefore);

/// <summary>History reasons, as stored in the <c>reason</c> column.</summary>
public static class HistoryReasons
{
    public const string SignupCredit = "signup_credit";
    public const string FirstProjectCredit = "first_project_credit";
    public const string AiUsage = "ai_usage";
    public const string AiUsageUserFallback = "ai_usage_user_fallback";
    public const string AiUsagePersonal = "ai_usage_personal";
    public const string TopUp = "top_up";
    public const string Refund = "refund";
    public const string PromotionalCredit = "promotional_credit";
    public const string QuotaCycleReset = "quota_cycle_reset";
    public const string PlanChange = "plan_change";

    /// <summary>Reasons an operator may give a credit.</summary>
    public static readonly IReadOnlySet<string> CreditReasons = new HashSet<string> { TopUp, Refund, PromotionalCredit };
}
