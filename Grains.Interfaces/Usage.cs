namespace Billing;

/// <summary>AI usage in a project: paid by the project, else by the user's personal account.</summary>
[GenerateSerializer, Immutable, Alias("Billing.AiUsage")]
public sealed record AiUsage(Guid UsageId, Guid ProjectId, Guid UserId, Guid ModelId, long InputTokens, long OutputTokens);

/// <summary>Personal AI usage, paid only by the user's account.</summary>
[GenerateSerializer, Immutable, Alias("Billing.PersonalUsage")]
public sealed record PersonalUsage(Guid UsageId, Guid UserId, Guid ModelId, long InputTokens, long OutputTokens);

[GenerateSerializer]
public enum PayingAccount
{
    Project = 0,
    User = 1,
}

/// <summary>What a usage cost and who paid. A retry with the same usage id returns the same receipt.</summary>
[GenerateSerializer, Immutable, Alias("Billing.UsageReceipt")]
public sealed record UsageReceipt(
    Guid UsageId,
    decimal Cost,
    string Currency,
    long InputTokens,
    long OutputTokens,
    PayingAccount DeductedFrom,
    Guid AccountId,
    decimal BalanceAfter,
    decimal QuotaUsed);

/// <summary>Would this call be payable now? <see cref="ProjectId"/> is optional.</summary>
[GenerateSerializer, Immutable, Alias("Billing.BalanceCheck")]
public sealed record BalanceCheck(Guid? ProjectId, Guid UserId, Guid ModelId, long EstimatedInputTokens, long EstimatedOutputTokens);

/// <summary>
/// <see cref="Sufficient"/> is true only when one account alone can pay (a cost is never split between
/// project and user). Available amounts include what is left of a pro account's monthly quota.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.BalanceCheckResult")]
public sealed record BalanceCheckResult(bool Sufficient, decimal EstimatedCost, string Currency, decimal? ProjectAvailable, decimal UserAvailable);

/// <summary>
/// A charge asked of one account by <see cref="IUsageGrain"/>. The account decides it against its balance and
/// quota, and stores it at most once per <see cref="UsageId"/> across all accounts.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.AccountCharge")]
public sealed record AccountCharge(
    Guid UsageId,
    string Reason,
    decimal Cost,
    string Currency,
    Guid ModelId,
    long InputTokens,
    long OutputTokens,
    Guid? CounterpartyId);
