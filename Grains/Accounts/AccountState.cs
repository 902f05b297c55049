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

    /// <summary>The account's active holds (Holds/HoldLedger.cs); those past expiry count as released.</summary>
    public ActiveHolds Holds { get; init; } = ActiveHolds.Empty;

    /// <summary>Moves with every hold change (column <c>holds_seq</c>): with <see cref="Version"/>, the commit's guard.</summary>
    public long HoldsVersion { get; init; }

    /// <summary>Its open grants (scheduled, or active with something left); the active ones' remaining add up to the balance (G1).</summary>
    public GrantSet Grants { get; init; } = GrantSet.Empty;

    /// <summary>
    /// Its usage rows of the hour, model and currency it used last, added up (columns <c>usage_hour_*</c>); the
    /// summary's rollup of earlier ones is in <c>usage_hourly</c> (<see cref="UsageRollup"/>). Null before its first usage row.
    /// </summary>
    public UsageHourTotal? UsageHour { get; init; }

    /// <summary>The account as of its last change (what an operation answers with).</summary>
    public AccountView ToView() => ToView(UpdatedAt);

    /// <summary>The account at <paramref name="now"/>: holds past their expiry no longer count as held.</summary>
    public AccountView ToView(DateTimeOffset now)
    {
        var held = HoldLedger.Held(this, now);
        return new(Id, Kind, CreatorId, Balance, Currency, InitialCreditGranted, IsPro, MonthlyQuota, MonthUsed,
            CycleStart, CycleEnd, CreatedAt, UpdatedAt, Version, held, HoldLedger.Available(this, now));
    }
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
    /// <summary>The hold a capture's row settles (outside the positional members: most rows have none).</summary>
    public Guid? HoldId { get; init; }

    /// <summary>What the row moved on each grant (credit_grant_entry), in spending order; empty for rows that touch none.</summary>
    public IReadOnlyList<GrantChange> GrantChanges { get; init; } = [];

    /// <summary>
    /// The one grant this row moved by its whole amount, written in the row's own <c>grant_id</c> instead of a
    /// <c>credit_grant_entry</c> row (almost every row); null when it moved none, or two or more (those get entries).
    /// </summary>
    public Guid? GrantInRow => GrantChanges is [var only] && only.Amount == Amount ? only.GrantId : null;
}
