namespace Billing.Accounts;

/// <summary>
/// What an account's usage rows of one hour, model and currency add up to: a <c>usage_hourly</c> row, or the account's
/// open hour (its <c>usage_hour_*</c> columns).
/// </summary>
public sealed record UsageHourTotal(DateTimeOffset Hour, Guid ModelId, string Currency, long Requests, decimal InputTokens, decimal OutputTokens, decimal Cost)
{
    public bool SameHourAs(UsageHourTotal other) => Hour == other.Hour && ModelId == other.ModelId && Currency == other.Currency;
}

/// <summary>
/// The usage summary's rollup (<c>GET /v1/usage/summary</c>), kept by the grains instead of a trigger on the history:
/// the usage rows of the hour, model and currency an account used last add up on the account itself
/// (<see cref="AccountState.UsageHour"/>, written by the account update every commit makes anyway); a usage row of
/// another hour, model or currency closes that open hour into <c>usage_hourly</c>, in the same statement as the row.
/// So <c>usage_hourly</c> plus the accounts' open hours are exactly the sums of the usage rows, at every commit. An
/// upsert of <c>usage_hourly</c> per account and commit cost ≈ 17 µs of PostgreSQL per SPREAD usage (docs/performance.md, "The usage
/// rollup on the account row"); now one is written per account and hour (or change of model).
/// </summary>
public static class UsageRollup
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    /// <summary>The rows a summary counts: a project's own usage; a user's personal usage and the fallbacks it paid.</summary>
    public static bool Counts(AccountKind kind, string reason) => kind == AccountKind.Project
        ? reason == HistoryReasons.AiUsage
        : reason is HistoryReasons.AiUsagePersonal or HistoryReasons.AiUsageUserFallback;

    /// <summary>The whole UTC hour <paramref name="at"/> falls in (as <c>date_bin('1 hour', …)</c> from a UTC midnight).</summary>
    public static DateTimeOffset HourOf(DateTimeOffset at) => new(at.UtcTicks - at.UtcTicks % Hour.Ticks, TimeSpan.Zero);

    /// <summary>
    /// The account after <paramref name="row"/> (already applied to it) is added to its open hour; the open hour it
    /// closes, if any, goes to <paramref name="closed"/>.
    /// </summary>
    public static AccountState Add(AccountState account, LedgerRow row, List<UsageHourTotal> closed)
    {
        if (!Counts(account.Kind, row.Reason)) return account;
        var added = new UsageHourTotal(HourOf(row.CreatedAt), row.ModelId ?? Guid.Empty, row.Currency, 1,
            row.InputTokens ?? 0, row.OutputTokens ?? 0, row.QuotaUsed - row.Amount);
        if (account.UsageHour is { } open && open.SameHourAs(added))
        {
            return account with
            {
                UsageHour = open with
                {
                    Requests = open.Requests + 1,
                    InputTokens = open.InputTokens + added.InputTokens,
                    OutputTokens = open.OutputTokens + added.OutputTokens,
                    Cost = open.Cost + added.Cost,
                },
            };
        }

        if (account.UsageHour is { } previous) closed.Add(previous);
        return account with { UsageHour = added };
    }
}
