namespace Billing.Tests;

/// <summary>
/// Tests that move the clock backwards, as a silo whose clock is behind another's: on a cluster of their own
/// (<see cref="SkewClockClusterFixture"/>), so no other test sees time go back. Each puts the clock back where it was.
/// </summary>
[Collection(SkewClockClusterCollection.Name)]
public sealed class ClockSkewTests(SkewClockClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task ReviewDefect11_HistoryTimeNeverGoesBackWhenTheClockDoes()
    {
        var user = await NewUser();
        var grain = Grains.GetGrain<IUserGrain>(user);
        Assert.True((await grain.Credit(new AccountCredit(1m, HistoryReasons.TopUp, Guid.NewGuid()))).IsOk);
        var newest = (await History(AccountKind.User, user))[0].CreatedAt;

        // The account fails over to a silo whose clock is an hour behind.
        Fixture.Clock.Advance(TimeSpan.FromHours(-1));
        try
        {
            Assert.True((await grain.Credit(new AccountCredit(1m, HistoryReasons.TopUp, Guid.NewGuid()))).IsOk);
            var plan = (await grain.ChangePlan(new PlanChange(true, 5m))).Value!;
            Assert.True(plan.CycleStart >= newest, $"cycle starts {plan.CycleStart:O}, before the newest row {newest:O}");
        }
        finally
        {
            Fixture.Clock.Advance(TimeSpan.FromHours(1));
        }

        var rows = (await History(AccountKind.User, user)).Reverse().ToArray();
        for (var i = 1; i < rows.Length; i++)
        {
            Assert.True(rows[i].CreatedAt >= rows[i - 1].CreatedAt, $"row {rows[i].Sequence} at {rows[i].CreatedAt:O} is before row {rows[i - 1].Sequence} at {rows[i - 1].CreatedAt:O}");
        }
    }

    /// <summary>
    /// Holds review defect: a retry of a placed hold id that meets no price in effect was answered 422, not its hold
    /// ("the same holdId again with the same body: 200 with the same hold"). No price after a placement happens when a
    /// silo's clock is behind the one that placed it; here the clock goes forward to place and back as far.
    /// </summary>
    [Fact]
    public async Task ReviewDefect_PlacementRetriedWhenNoPriceIsInEffectAnswersTheStoredHoldNotA422()
    {
        var start = Fixture.Clock.GetUtcNow();
        var model = Guid.NewGuid();
        var priced = await Grains.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput(1_000_000m, 1_000_000m, "USD", start.AddMinutes(10)));
        Assert.True(priced.IsOk, priced.Problem?.Detail);
        var user = await NewUser(); // 10
        var request = new HoldRequest(Guid.NewGuid(), null, user, model, 6, 0);
        Fixture.Clock.Advance(TimeSpan.FromMinutes(11));
        try
        {
            Assert.True((await Usage.PlaceHold(request)).IsOk);
            Assert.True((await Usage.VoidHold(request.HoldId)).IsOk);
        }
        finally
        {
            Fixture.Clock.Advance(TimeSpan.FromMinutes(-11)); // back where it was: the model's price is not in effect yet
        }

        var retried = await Usage.PlaceHold(request);

        Assert.True(retried.IsOk, retried.Problem?.Detail);
        Assert.Equal((request.HoldId, HoldStatus.Voided, 6m), (retried.Value!.HoldId, retried.Value.Status, retried.Value.Amount));
        Assert.Equal(BillingStatus.NoPriceInEffect, (await Usage.PlaceHold(request with { HoldId = Guid.NewGuid() })).Problem!.Status);
        Assert.Equal(0, await BillingErrorCount(user));
    }
}
