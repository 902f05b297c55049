using Billing.Usage;

namespace Billing.Properties.Tests;

/// <summary>
/// The silo's memory of who pays each hold it placed (captures and voids skip the database read with it): exact for a
/// remembered hold, forgotten after capture or void, and bounded, expired holds giving way first.
/// </summary>
public sealed class HoldRoutesTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private static HoldView Hold(DateTimeOffset expiresAt, PayingAccount payer = PayingAccount.Project)
    {
        var (project, user) = (Guid.NewGuid(), Guid.NewGuid());
        return new HoldView(Guid.NewGuid(), HoldStatus.Active, payer, payer == PayingAccount.Project ? project : user, project, user,
            Guid.NewGuid(), 100, 200, 0.0033m, "USD", 3m, 15m, 900, expiresAt, Now, null, null);
    }

    [Fact]
    public void A_remembered_hold_routes_to_its_payer_until_it_is_forgotten()
    {
        var routes = new HoldRoutes(new FixedClock(Now));
        var byUser = Hold(Now.AddMinutes(15), PayingAccount.User);
        routes.Remember(byUser);

        Assert.Equal(new HoldRoute(byUser.HoldId, PayingAccount.User, byUser.UserId, byUser.ProjectId, byUser.ModelId, byUser.ExpiresAt), routes.Find(byUser.HoldId));
        Assert.Null(routes.Find(Guid.NewGuid()));

        routes.Forget(byUser.HoldId);
        Assert.Null(routes.Find(byUser.HoldId));
    }

    [Fact]
    public void At_its_bound_expired_holds_give_way_and_otherwise_a_new_hold_is_not_remembered()
    {
        var routes = new HoldRoutes(new FixedClock(Now));
        var expired = Enumerable.Range(0, 10).Select(_ => Hold(Now.AddSeconds(-1))).ToArray();
        foreach (var hold in expired) routes.Remember(hold);
        for (var i = expired.Length; i < HoldRoutes.Capacity; i++) routes.Remember(Hold(Now.AddMinutes(15)));
        Assert.Equal(HoldRoutes.Capacity, routes.Count);

        // Full: the expired ones are swept to make room.
        var next = Hold(Now.AddMinutes(15));
        routes.Remember(next);
        Assert.Equal(next.HoldId, routes.Find(next.HoldId)?.HoldId);
        Assert.All(expired, hold => Assert.Null(routes.Find(hold.HoldId)));
        Assert.Equal(HoldRoutes.Capacity - expired.Length + 1, routes.Count);

        // Full of live holds: the new one is read from the database instead (not remembered), and the count stays bounded.
        for (var i = routes.Count; i < HoldRoutes.Capacity; i++) routes.Remember(Hold(Now.AddMinutes(15)));
        var beyond = Hold(Now.AddMinutes(15));
        routes.Remember(beyond);
        Assert.Null(routes.Find(beyond.HoldId));
        Assert.Equal(HoldRoutes.Capacity, routes.Count);
    }
}
