using System.Numerics;

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

    private static readonly BigInteger MaxMantissa = (BigInteger.One << 96) - 1;

    /// <summary>The exact cost, or null when it does not fit a decimal exactly (token counts far too large).</summary>
    public static decimal? TryCompute(long inputTokens, long outputTokens, decimal inputPricePerMillion, decimal outputPricePerMillion)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(inputTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(outputTokens);
        var (inMantissa, inScale) = Split(inputPricePerMillion);
        var (outMantissa, outScale) = Split(outputPricePerMillion);
        var scale = Math.Max(inScale, outScale);
        var total = inputTokens * inMantissa * BigInteger.Pow(10, scale - inScale)
                    + outputTokens * outMantissa * BigInteger.Pow(10, scale - outScale);
        scale += 6; // ÷ 1,000,000
        while (scale > 0 && !total.IsZero && total % 10 == 0)
        {
            total /= 10;
            scale--;
        }

        if (total.IsZero) return 0m;
        if (scale > 28 || BigInteger.Abs(total) > MaxMantissa) return null;
        var bytes = BigInteger.Abs(total).ToByteArray(isUnsigned: true, isBigEndian: false);
        Array.Resize(ref bytes, 12);
        return new decimal(BitConverter.ToInt32(bytes, 0), BitConverter.ToInt32(bytes, 4), BitConverter.ToInt32(bytes, 8), total.Sign < 0, (byte)scale);
    }

    private static (BigInteger Mantissa, int Scale) Split(decimal value)
    {
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(value, bits);
        var magnitude = new BigInteger((uint)bits[0]) | (new BigInteger((uint)bits[1]) << 32) | (new BigInteger((uint)bits[2]) << 64);
        return (bits[3] < 0 ? -magnitude : magnitude, value.Scale);
    }
}
