using System.Globalization;
using System.Numerics;

namespace Billing.Properties.Tests;

/// <summary>An exact rational number mantissa / 10^scale, built from the decimal's text (independent of decimal.GetBits).</summary>
public readonly record struct Exact(BigInteger Mantissa, int Scale)
{
    public static readonly BigInteger MaxDecimalMantissa = (BigInteger.One << 96) - 1;

    public static Exact Of(decimal value)
    {
        var text = value.ToString(CultureInfo.InvariantCulture);
        var negative = text.StartsWith('-');
        if (negative) text = text[1..];
        var dot = text.IndexOf('.');
        var scale = dot < 0 ? 0 : text.Length - dot - 1;
        var digits = dot < 0 ? text : text.Remove(dot, 1);
        var mantissa = BigInteger.Parse(digits, CultureInfo.InvariantCulture);
        return new Exact(negative ? -mantissa : mantissa, scale).Normalize();
    }

    public static Exact Of(long value) => new Exact(value, 0);

    public Exact Normalize()
    {
        var m = Mantissa;
        var s = Scale;
        if (m.IsZero) return new Exact(0, 0);
        while (s > 0 && m % 10 == 0)
        {
            m /= 10;
            s--;
        }

        return new Exact(m, s);
    }

    public static Exact operator +(Exact a, Exact b)
    {
        var s = Math.Max(a.Scale, b.Scale);
        return new Exact(a.Mantissa * BigInteger.Pow(10, s - a.Scale) + b.Mantissa * BigInteger.Pow(10, s - b.Scale), s).Normalize();
    }

    public static Exact operator -(Exact a) => new(-a.Mantissa, a.Scale);

    public static Exact operator -(Exact a, Exact b) => a + -b;

    public static Exact operator *(Exact a, Exact b) => new Exact(a.Mantissa * b.Mantissa, a.Scale + b.Scale).Normalize();

    /// <summary>Divides by 10^n exactly.</summary>
    public Exact DivPow10(int n) => new Exact(Mantissa, Scale + n).Normalize();

    /// <summary>Whether a System.Decimal can hold this number exactly.</summary>
    public bool FitsDecimal
    {
        get
        {
            var n = Normalize();
            return n.Scale <= 28 && BigInteger.Abs(n.Mantissa) <= MaxDecimalMantissa;
        }
    }

    public int CompareTo(Exact other)
    {
        var s = Math.Max(Scale, other.Scale);
        return (Mantissa * BigInteger.Pow(10, s - Scale)).CompareTo(other.Mantissa * BigInteger.Pow(10, s - other.Scale));
    }

    public override string ToString() => Scale == 0 ? Mantissa.ToString(CultureInfo.InvariantCulture) : $"{Mantissa}e-{Scale}";
}
