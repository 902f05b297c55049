namespace Billing.Accounts;

/// <summary>An account as its grain holds it: the account row of the database, committed.</summary>
public sealed record AccountState(
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
    long Version,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    public AccountView ToView() => new(
        Id, Kind, CreatorId, Balance, Currency, InitialCreditGranted, IsPro, MonthlyQuota, MonthUsed,
        CycleStart, CycleEnd, CreatedAt, UpdatedAt, Version);
}

/// <summary>A history row to append. <see cref="CounterpartyId"/> is the project of a user's row, the user of a project's.</summary>
public sealed record LedgerRow(
    Guid Id,
    long Sequence,
    decimal Amount,
    decimal QuotaUsed,
    string Currency,
    string Reason,
    decimal BalanceAfter,
    decimal MonthUsedAfter,
    Guid? UsageId,
    Guid? CounterpartyId,
    Guid? ModelId,
    long? InputTokens,
    long? OutputTokens,
    Guid? CreditId,
    string? Extra,
    DateTimeOffset CreatedAt);
