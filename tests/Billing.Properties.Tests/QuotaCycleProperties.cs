using Billing.Accounts;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Billing.Properties.Tests;

/// <summary>
/// Issue 9, defect 2: quota cycles, driven through the ledger rules as the account grain drives them (a plan change
/// anchors the first cycle, a reset starts each next one on the first touch after a cycle ended).
/// </summary>
public class QuotaCycleProperties
{
    /// <summary>An anchor on any day of any month (leap years and 2100 included), at any microsecond of the day.</summary>
    private static readonly Gen<DateTimeOffset> Anchor =
        from day in Gen.Choose(1, 31)
        from year in Gen.Elements(1999, 2000, 2023, 2024, 2025, 2027, 2028, 2099, 2100)
        from month in Gen.Elements(Enumerable.Range(1, 12).Where(m => DateTime.DaysInMonth(year, m) >= day).ToArray())
        from micros in Gen.Choose(0, 86_399_999).Select(m => (long)m * 1_000)
        select new DateTimeOffset(year, month, day, 0, 0, 0, TimeSpan.Zero).AddTicks(micros * 10);

    /// <summary>When the account is next touched after a cycle ended: at its end, within the next cycle, or cycles later.</summary>
    private static readonly Gen<TimeSpan> Touch = Gen.Frequency(
        (2, Gen.Constant(TimeSpan.Zero)),
        (5, from minutes in Gen.Choose(0, 27 * 24 * 60) select TimeSpan.FromMinutes(minutes)),
        (1, from days in Gen.Choose(28, 400) select TimeSpan.FromDays(days)));

    [Property(MaxTest = 2000)]
    public Property ReviewDefect02_QuotaCyclesAreContiguousMonthLongAndKeepTheAnchorDay() =>
        Prop.ForAll(Walks.ToArbitrary(), walk =>
        {
            var failure = Walk(walk.Anchor, walk.Touches);
            return (failure is null).Label(failure ?? "");
        });

    private static readonly Gen<(DateTimeOffset Anchor, TimeSpan[] Touches)> Walks =
        from anchor in Anchor
        from touches in Touch.ListOf().Select(l => l.Take(40).ToArray())
        select (anchor, touches);

    /// <summary>Every anchor day 1–31, in a leap year, a common year and 2100, for four years of cycles touched at their end.</summary>
    [Fact]
    public void ReviewDefect02_EveryAnchorDayFrom1To31KeepsItsDayForFourYears()
    {
        foreach (var year in new[] { 2023, 2024, 2100 })
        {
            for (var day = 1; day <= 31; day++)
            {
                var anchor = new DateTimeOffset(year, 1, day, 23, 59, 59, TimeSpan.Zero).AddTicks(1_234_560);
                Assert.Null(Walk(anchor, Enumerable.Repeat(TimeSpan.Zero, 48).ToArray()));
                Assert.Null(Walk(anchor, Enumerable.Repeat(TimeSpan.FromDays(3), 48).ToArray()));
            }
        }
    }

    /// <summary>The cycles of Jan 31 in the issue: [Jan 31, Feb 28) → [Feb 28, Mar 31) → [Mar 31, Apr 30), not [Mar 28, Apr 28).</summary>
    [Fact]
    public void ReviewDefect02_Jan31GoesToFeb28ThenMar31ThenApr30()
    {
        var anchor = new DateTimeOffset(2026, 1, 31, 9, 0, 0, TimeSpan.Zero);
        var state = Pro(anchor);
        var ends = new List<DateTimeOffset> { state.CycleEnd!.Value };
        for (var i = 0; i < 3; i++)
        {
            state = Reset(state, state.CycleEnd!.Value)!;
            ends.Add(state.CycleEnd!.Value);
        }

        Assert.Equal(
            [new(2026, 2, 28, 9, 0, 0, TimeSpan.Zero), new(2026, 3, 31, 9, 0, 0, TimeSpan.Zero), new(2026, 4, 30, 9, 0, 0, TimeSpan.Zero), new(2026, 5, 31, 9, 0, 0, TimeSpan.Zero)],
            ends);
    }

    /// <summary>Anchors a pro plan at <paramref name="anchor"/>, then touches the account after each cycle ended; null or what went wrong.</summary>
    private static string? Walk(DateTimeOffset anchor, TimeSpan[] touches)
    {
        var state = Pro(anchor);
        var failure = CheckCycle(anchor, state, previousEnd: null, now: anchor);
        for (var i = 0; failure is null && i < touches.Length; i++)
        {
            var previousEnd = state.CycleEnd!.Value;
            var now = previousEnd + touches[i];
            if (AccountLedger.CycleReset(state, previousEnd.AddTicks(-10)) is not null) return $"reset before the cycle ended at {previousEnd:O}";
            state = Reset(state, now);
            if (state is null) return $"no reset at {now:O} after the cycle ended at {previousEnd:O}";
            failure = CheckCycle(anchor, state, previousEnd, now);
        }

        return failure;
    }

    private static string? CheckCycle(DateTimeOffset anchor, AccountState state, DateTimeOffset? previousEnd, DateTimeOffset now)
    {
        var (start, end) = (state.CycleStart!.Value, state.CycleEnd!.Value);
        var cycle = $"cycle [{start:O}, {end:O}) of anchor {anchor:O}";
        if (!(start <= now && now < end)) return $"{cycle} does not contain now {now:O}";
        if (state.CycleAnchor != anchor) return $"{cycle}: anchor became {state.CycleAnchor:O}";
        // Contiguous: touched within the next cycle (which lasts at least 28 days), it starts where the last one
        // ended; touched later, on a later boundary (checked below), never before the last one ended.
        if (previousEnd is { } last && now < last.AddDays(28) && start != last) return $"{cycle} does not start where the last ended ({last:O})";
        if (previousEnd is { } ended && start < ended) return $"{cycle} overlaps the last one, ended {ended:O}";
        var days = (end - start).TotalDays;
        if (days is < 28 or > 31) return $"{cycle} lasts {days} days";
        foreach (var boundary in new[] { start, end })
        {
            var utc = boundary.UtcDateTime;
            var expectedDay = Math.Min(anchor.Day, DateTime.DaysInMonth(utc.Year, utc.Month));
            if (utc.Day != expectedDay) return $"{cycle}: boundary {utc:O} is not on day {expectedDay}";
            if (utc.TimeOfDay != anchor.UtcDateTime.TimeOfDay) return $"{cycle}: boundary {utc:O} is not at the anchor's time of day";
        }

        var months = (end.Year - start.Year) * 12 + end.Month - start.Month;
        return months == 1 ? null : $"{cycle} spans {months} months";
    }

    private static AccountState Pro(DateTimeOffset at)
    {
        var empty = new AccountState(Guid.NewGuid(), AccountKind.User, null, 10m, AccountLedger.DefaultCurrency, true, false, 0m, 0m, null, null, 1, at, at);
        var plan = new PlanChange(true, 5m);
        return AccountLedger.ApplyPlanChange(empty, plan, AccountLedger.PlanChange(empty, plan, at));
    }

    private static AccountState? Reset(AccountState state, DateTimeOffset now) =>
        AccountLedger.CycleReset(state, now) is { } row ? AccountLedger.ApplyCycleReset(state, row) : null;
}
