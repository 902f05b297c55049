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
    /// <summary>
    /// When the pro plan started its cycles: every cycle boundary is this instant moved on by whole months (its day
    /// clamped to the month's length), so cycles never drift. Null when not pro. Outside the positional members so
    /// that constructing an account stays as it was (a new account is never pro).
    /// </summary>
    public DateTimeOffset? CycleAnchor { get; init; }

    /// <summary>Its open grants (scheduled, or active with something left); the active ones' remaining add up to the balance (G1).</summary>
    public GrantSet Grants { get; init; } = GrantSet.Empty;

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
    DateTimeOffset CreatedAt)
{
    /// <summary>What the row moved on each grant (credit_grant_entry), in spending order; empty for rows that touch none.</summary>
    public IReadOnlyList<GrantChange> GrantChanges { get; init; } = [];
}
