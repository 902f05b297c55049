using System.Numerics;
using Billing.Pricing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Billing.Properties.Tests;

/// <summary>
/// Cost = in × inPrice / 1e6 + out × outPrice / 1e6, checked against an exact rational reference built from the
/// prices' text: exact when a decimal can hold it, refused (null) — never rounded — when it cannot.
/// </summary>
public class UsageCostProperties
{
    public const long MaxTokens = 1L << 53;

    /// <summary>Exact cost of the reference: the spec's formula on rationals.</summary>
    public static Exact Reference(long inputTokens, long outputTokens, decimal inputPrice, decimal outputPrice) =>
        (Exact.Of(inputTokens) * Exact.Of(inputPrice) + Exact.Of(outputTokens) * Exact.Of(outputPrice)).DivPow10(6);

    private static Gen<long> Long(long maxInclusive) =>
        from hi in Gen.Choose(0, int.MaxValue)
        from lo in Gen.Choose(0, int.MaxValue)
        select (long)(((BigInteger)hi << 31 | lo) % ((BigInteger)maxInclusive + 1));

    /// <summary>Token counts 0 … 2^53, biased to small, zero and the boundary.</summary>
    public static Gen<long> Tokens(long max = MaxTokens) => Gen.Frequency(
        (3, Gen.Choose(0, 100_000).Select(i => (long)i)),
        (3, Long(max)),
        (1, Gen.Constant(0L)),
        (1, Gen.Elements(max, max - 1, 1_000_000L, 999_999L, 1L)));

    /// <summary>A price per million with at most <paramref name="maxScale"/> decimals and an integer part at most <paramref name="maxWhole"/>.</summary>
    public static Gen<decimal> Price(int maxWhole, int maxScale) => Gen.Frequency(
        (2, Gen.Elements(0m, 0.15m, 0.6m, 3.00m, 15.00m, 75m, 0.000001m, 1_000_000_000m)
            .Where(p => p <= maxWhole && p.Scale <= maxScale)),
        (5, from whole in Gen.Choose(0, maxWhole)
            from scale in Gen.Choose(0, maxScale)
            from fracHi in Gen.Choose(0, 999_999)
            from fracLo in Gen.Choose(0, 999_999)
            let frac = ((long)fracHi * 1_000_000 + fracLo) % (long)Math.Pow(10, scale)
            select whole + (scale == 0 ? 0m : frac / (decimal)Math.Pow(10, scale))));

    public static Gen<(long In, long Out, decimal InPrice, decimal OutPrice)> Usage(long maxTokens, int maxWhole, int maxScale) =>
        from i in Tokens(maxTokens)
        from o in Tokens(maxTokens)
        from pi in Price(maxWhole, maxScale)
        from po in Price(maxWhole, maxScale)
        select (i, o, pi, po);

    [Property(MaxTest = 2000)]
    public Property Cost_is_exact_or_refused_never_rounded() =>
        Prop.ForAll(Usage(MaxTokens, 1_000_000_000, UsageCost.MaxPriceScale).ToArbitrary(), u =>
        {
            var reference = Reference(u.In, u.Out, u.InPrice, u.OutPrice);
            var cost = UsageCost.TryCompute(u.In, u.Out, u.InPrice, u.OutPrice);
            return cost is { } c
                ? (Exact.Of(c).CompareTo(reference) == 0).Label($"cost {c} != exact {reference}")
                : (!reference.FitsDecimal).Label($"refused although exact {reference} fits a decimal");
        });

    /// <summary>Up to 2^53 tokens at up to 1,000,000 per million with ≤ 6 decimals, a cost is never refused.</summary>
    [Property(MaxTest = 2000)]
    public Property Cost_never_overflows_up_to_2_pow_53_tokens_at_realistic_prices() =>
        Prop.ForAll(Usage(MaxTokens, 1_000_000, 6).ToArbitrary(), u =>
        {
            var cost = UsageCost.TryCompute(u.In, u.Out, u.InPrice, u.OutPrice);
            return (cost is { } c && Exact.Of(c).CompareTo(Reference(u.In, u.Out, u.InPrice, u.OutPrice)) == 0)
                .Label($"cost {cost?.ToString() ?? "refused"}");
        });

    /// <summary>Up to 2^53 tokens at prices up to 1e9 per million with up to 12 decimals: no exception, never rounded.</summary>
    [Property(MaxTest = 1000)]
    public Property Cost_never_throws_at_the_extremes() =>
        Prop.ForAll(Usage(MaxTokens, 1_000_000_000, 12).ToArbitrary(), u =>
        {
            var cost = UsageCost.TryCompute(u.In, u.Out, u.InPrice, u.OutPrice);
            return cost is null || cost >= 0m;
        });

    [Property(MaxTest = 2000)]
    public Property Cost_is_monotone_in_tokens() =>
        Prop.ForAll((from u in Usage(MaxTokens, 1_000_000_000, 12)
                     from di in Tokens(MaxTokens)
                     from dout in Tokens(MaxTokens)
                     select (u, di, dout)).ToArbitrary(), x =>
        {
            var (u, di, dout) = x;
            var in2 = Math.Min(MaxTokens, u.In + di);
            var out2 = Math.Min(MaxTokens, u.Out + dout);
            var small = UsageCost.TryCompute(u.In, u.Out, u.InPrice, u.OutPrice);
            var large = UsageCost.TryCompute(in2, out2, u.InPrice, u.OutPrice);
            return (small is null || large is null || small <= large).Label($"cost({u.In},{u.Out})={small} > cost({in2},{out2})={large}");
        });

    [Property(MaxTest = 500)]
    public Property Cost_is_zero_for_zero_tokens() =>
        Prop.ForAll((from pi in Price(1_000_000_000, 12) from po in Price(1_000_000_000, 12) select (pi, po)).ToArbitrary(),
            p => UsageCost.TryCompute(0, 0, p.pi, p.po) == 0m);

    [Property(MaxTest = 500)]
    public Property Cost_is_additive_in_tokens_when_exact() =>
        Prop.ForAll((from a in Tokens(MaxTokens / 2) from b in Tokens(MaxTokens / 2) from p in Price(1_000_000, 12) select (a, b, p)).ToArbitrary(), x =>
        {
            var ca = UsageCost.TryCompute(x.a, 0, x.p, 0m);
            var cb = UsageCost.TryCompute(x.b, 0, x.p, 0m);
            var cab = UsageCost.TryCompute(x.a + x.b, 0, x.p, 0m);
            return ca is null || cb is null || cab is null || Exact.Of(ca.Value) + Exact.Of(cb.Value) is var sum && sum.CompareTo(Exact.Of(cab.Value)) == 0;
        });

    [Fact]
    public void Negative_tokens_are_refused_with_an_exception_not_a_credit()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => UsageCost.TryCompute(-1, 0, 3m, 15m));
        Assert.Throws<ArgumentOutOfRangeException>(() => UsageCost.TryCompute(0, -1, 3m, 15m));
    }

    [Fact]
    public void Known_costs()
    {
        Assert.Equal(0.00885m, UsageCost.TryCompute(1200, 350, 3.00m, 15.00m));
        Assert.Equal(0.000001m, UsageCost.TryCompute(1, 0, 1m, 0m));
        Assert.Equal(0.000000000000000001m, UsageCost.TryCompute(1, 0, 0.000000000001m, 0m));
        // 2^53 tokens at 1e9 per million: 9,007,199,254,740,992,000 — fits, exact.
        Assert.Equal(9_007_199_254_740_992_000m, UsageCost.TryCompute(MaxTokens, 0, 1_000_000_000m, 0m));
    }

    [Fact]
    public void A_cost_a_decimal_cannot_hold_is_refused_not_rounded()
    {
        // 2^53 × 999,999,999.999999999999 / 1e6 has 37 significant digits: no decimal holds it.
        const decimal price = 999_999_999.999999999999m;
        Assert.False(Reference(MaxTokens, MaxTokens, price, price).FitsDecimal);
        Assert.Null(UsageCost.TryCompute(MaxTokens, MaxTokens, price, price));
    }
}
