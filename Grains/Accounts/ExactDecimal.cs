using System.Numerics;

namespace Billing.Accounts;

/// <summary>
/// Decimal arithmetic that never rounds. C#'s <c>decimal</c> silently rounds a result that needs more than
/// 28–29 significant digits; for money that would make a balance differ from the sum of its history (I1).
/// These return null instead, and the caller refuses the operation.
/// </summary>
public static class ExactDecimal
{
    private static readonly BigInteger MaxMantissa = (BigInteger.One << 96) - 1;

    public static decimal? TryAdd(decimal a, decimal b)
    {
        var (ma, sa) = Split(a);
        var (mb, sb) = Split(b);
        var scale = Math.Max(sa, sb);
        return TryCompose(ma * BigInteger.Pow(10, scale - sa) + mb * BigInteger.Pow(10, scale - sb), scale, keepScale: scale);
    }

    public static decimal? TrySubtract(decimal a, decimal b) => TryAdd(a, -b);

    /// <summary>
    /// The decimal equal to <paramref name="mantissa"/> × 10^-<paramref name="scale"/>, or null when none is.
    /// Trailing zeros are dropped down to <paramref name="keepScale"/> decimals (further only if needed to fit).
    /// </summary>
    public static decimal? TryCompose(BigInteger mantissa, int scale, int keepScale)
    {
        while (scale > keepScale && mantissa % 10 == 0)
        {
            mantissa /= 10;
            scale--;
        }

        while ((scale > 28 || BigInteger.Abs(mantissa) > MaxMantissa) && scale > 0 && mantissa % 10 == 0)
        {
            mantissa /= 10;
            scale--;
        }

        if (scale > 28 || BigInteger.Abs(mantissa) > MaxMantissa) return null;
        var bytes = BigInteger.Abs(mantissa).ToByteArray(isUnsigned: true, isBigEndian: false);
        Array.Resize(ref bytes, 12);
        return new decimal(BitConverter.ToInt32(bytes, 0), BitConverter.ToInt32(bytes, 4), BitConverter.ToInt32(bytes, 8), mantissa.Sign < 0, (byte)scale);
    }

    /// <summary>How many decimals <paramref name="value"/> needs: its scale without trailing zeros.</summary>
    public static int Decimals(decimal value)
    {
        var (mantissa, scale) = Split(value);
        while (scale > 0 && mantissa % 10 == 0)
        {
            mantissa /= 10;
            scale--;
        }

        return scale;
    }

    /// <summary>Whether a decimal can hold <paramref name="value"/> written with <paramref name="decimals"/> decimals (or with the more it has).</summary>
    public static bool FitsWith(decimal value, int decimals)
    {
        var (mantissa, scale) = Split(value);
        return decimals <= scale || (decimals <= 28 && BigInteger.Abs(mantissa) * BigInteger.Pow(10, decimals - scale) <= MaxMantissa);
    }

    public static (BigInteger Mantissa, int Scale) Split(decimal value)
    {
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(value, bits);
        var magnitude = new BigInteger((uint)bits[0]) | (new BigInteger((uint)bits[1]) << 32) | (new BigInteger((uint)bits[2]) << 64);
        return (bits[3] < 0 ? -magnitude : magnitude, value.Scale);
    }
}
