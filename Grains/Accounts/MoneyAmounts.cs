using Billing.Pricing;

namespace Billing.Accounts;

/// <summary>
/// Limits of the amounts a caller adds to an account (credits, grants, a pro plan's monthly quota): at most a trillion
/// a call, so no sum of them overflows a decimal. A quota also has at most <see cref="QuotaScale"/> decimals, as many
/// as a cost can have (a price's 12 over a million tokens): a usage takes what it can from the quota and the rest
/// from the balance, and with a quota of more decimals that split would not be exact and every usage would be refused.
/// Credits and grants may have more: whether the balance holds them exactly, and can later give back every grant it
/// holds exactly (CreditGrants.CanGiveBack), is checked when they count (a grant scheduled for later also when it is
/// given; CreditGrants.AppendDue for the rare one that no longer fits).
/// </summary>
internal static class MoneyAmounts
{
    /// <summary>The most decimals a monthly quota may have: as many as a cost can.</summary>
    public const int QuotaScale = UsageCost.MaxPriceScale + 6;

    /// <summary>The largest amount one call may add: a trillion of the account's currency.</summary>
    public const decimal Max = 1_000_000_000_000m;

    /// <summary>Why <paramref name="amount"/> is not an amount one call may add, or null when it is.</summary>
    public static string? Refusal(decimal amount, string member) =>
        amount <= 0 ? $"{member} must be above zero."
        : amount > Max ? $"{member} must be at most {Max:0}."
        : null;

    /// <summary>Why <paramref name="quota"/> is not a monthly quota, or null when it is (0 for none).</summary>
    public static string? QuotaRefusal(decimal quota) =>
        quota < 0 ? "monthlyQuota must not be negative."
        : quota > Max ? $"monthlyQuota must be at most {Max:0}."
        : decimal.Round(quota, QuotaScale) != quota ? $"monthlyQuota may have at most {QuotaScale} decimals."
        : null;
}
