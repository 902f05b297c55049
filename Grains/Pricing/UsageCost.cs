using System.Numerics;
using Billing.Accounts;

namespace Billing.Pricing;

/// <summary>
/// Cost = inputTokens × inputPrice / 1,000,000 + outputTokens × outputPrice / 1,000,000, exact.
/// Computed on whole numbers (BigInteger) so nothing is ever rounded: a cost that a decimal cannot hold
/// exactly is refused as too large instead of being silently rounded.
/// </summary>
public static class UsageCost
{
    /// <summary>Prices may have at most this many decimals, so every cost stays exact within a decimal's 28.</summary>
    public const int MaxPriceScale = 12;

    /// <summary>Costs show at least this many decimals, like the seed's amounts (0.0042, 2.0000).</summary>
    public const int MoneyScale = 4;

    /// <summary>The exact cost, or null when it does not fit a decimal exactly (token counts far too large).</summary>
    public static decimal? TryCompute(long inputTokens, long outputTokens, decimal inputPricePerMillion, decimal outputPricePerMillion)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(inputTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(outputTokens);
        var (inMantissa, inScale) = ExactDecimal.Split(inputPricePerMillion);
        var (outMantissa, outScale) = ExactDecimal.Split(outputPricePerMillion);
        var scale = Math.Max(inScale, outScale);
        var total = inputTokens * inMantissa * BigInteger.Pow(10, scale - inScale)
                    + outputTokens * outMantissa * BigInteger.Pow(10, scale - outScale);
        return ExactDecimal.TryCompose(total, scale + 6, keepScale: MoneyScale); // ÷ 1,000,000
    }
}
