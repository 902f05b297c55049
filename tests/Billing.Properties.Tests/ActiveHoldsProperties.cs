using Billing.Accounts;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Billing.Properties.Tests;

/// <summary>
/// An account's active holds (<see cref="ActiveHolds"/>, a running total and an expiry order) against the obvious
/// model: a dictionary of holds whose held amount at any moment is the sum of those not yet past their expiry.
/// </summary>
public sealed class ActiveHoldsProperties
{
    private static readonly DateTimeOffset Start = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Put (place or replace) a hold of one of 12 ids, or remove one; expiries often equal, amounts of varied scale.</summary>
    private static readonly Gen<(bool Put, int Id, int ExpirySeconds, decimal Amount)> Change =
        from put in Gen.Frequency((3, Gen.Constant(true)), (2, Gen.Constant(false)))
        from id in Gen.Choose(0, 11)
        from expiry in Gen.Elements(0, 10, 10, 60, 900, 3_600)
        from cents in Gen.Choose(0, 100_000)
        from scale in Gen.Elements(0, 2, 4, 9)
        select (put, id, expiry, cents / 100m * (scale == 9 ? 1.000000000m : scale == 4 ? 1.0000m : 1m));

    [Property(MaxTest = 400)]
    public Property Held_at_any_moment_is_the_sum_of_the_holds_not_yet_expired() =>
        Prop.ForAll(
            Gen.ListOf(Change).Select(c => c.ToArray()).ToArbitrary(),
            Gen.ListOf(Gen.Choose(-5, 4_000)).Select(s => s.ToArray()).ToArbitrary(),
            (changes, probeSeconds) =>
            {
                var holds = ActiveHolds.Empty;
                var model = new Dictionary<Guid, HoldView>();
                foreach (var (put, id, expirySeconds, amount) in changes)
                {
                    var holdId = IdOf(id);
                    if (put)
                    {
                        var hold = HoldOf(holdId, Start.AddSeconds(expirySeconds), amount);
                        holds = holds.With(hold);
                        model[holdId] = hold;
                    }
                    else
                    {
                        holds = holds.Without(holdId);
                        model.Remove(holdId);
                    }

                    if (!SameAsModel(holds, model, probeSeconds)) return false;
                }

                return true;
            });

    [Fact]
    public void An_emptied_set_holds_an_exact_zero()
    {
        var holdId = IdOf(1);
        var holds = ActiveHolds.Empty.With(HoldOf(holdId, Start.AddMinutes(1), 0.123456789m)).Without(holdId);

        Assert.True(holds.IsEmpty);
        Assert.Equal("0", holds.HeldAt(Start).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Null(holds.FirstExpiry);
    }

    private static bool SameAsModel(ActiveHolds holds, Dictionary<Guid, HoldView> model, int[] probeSeconds)
    {
        if (holds.Count != model.Count || holds.IsEmpty != (model.Count == 0)) return false;
        if (holds.FirstExpiry != (model.Count == 0 ? null : model.Values.Min(h => h.ExpiresAt))) return false;
        if (!model.Keys.All(id => holds.Find(id) == model[id] && holds.Contains(id))) return false;
        if (!holds.All.OrderBy(h => h.HoldId).SequenceEqual(model.Values.OrderBy(h => h.HoldId))) return false;
        foreach (var seconds in probeSeconds.Append(0).Append(10))
        {
            var now = Start.AddSeconds(seconds);
            if (holds.HeldAt(now) != model.Values.Where(h => h.IsHeldAt(now)).Sum(h => h.Amount)) return false;
            var expired = holds.ExpiredAt(now).ToList();
            if (!expired.Select(h => h.ExpiresAt).SequenceEqual(expired.Select(h => h.ExpiresAt).Order())) return false;
            if (!expired.OrderBy(h => h.HoldId).SequenceEqual(model.Values.Where(h => !h.IsHeldAt(now)).OrderBy(h => h.HoldId))) return false;
        }

        return true;
    }

    private static Guid IdOf(int number) => new(number, 0, 0, new byte[8]);

    private static HoldView HoldOf(Guid holdId, DateTimeOffset expiresAt, decimal amount) => new(
        holdId, HoldStatus.Active, PayingAccount.Project, IdOf(100), IdOf(100), IdOf(200), IdOf(300), 1_000, 500, amount, "USD",
        3m, 15m, 900, expiresAt, expiresAt.AddSeconds(-900), null, null);
}
