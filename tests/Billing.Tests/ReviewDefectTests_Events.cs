using Npgsql;

namespace Billing.Tests;

/// <summary>
/// Review defects of balance alerts: a rise of available that time made alone (a hold past its expiry, an ended pro
/// quota cycle) must still write its <c>balance.recovered</c>; <c>crossed</c> must not count a grant past its expiry.
/// On a movable clock.
/// </summary>
[Collection(ClockClusterCollection.Name)]
public sealed class ReviewDefectTests_Events(ClockClusterFixture fixture) : BillingTestBase(fixture)
{
    private IBalanceAlertsGrain Alerts(AccountKind kind, Guid id) => Account(kind, id).AsReference<IBalanceAlertsGrain>();

    /// <summary>
    /// A batch's alerts started from the committed state's available as of the batch's now, which already treats an
    /// expired hold as released: the write recording the expiry changed nothing they could see, so no recovered, and
    /// the next fall wrote a second low with no recovered between.
    /// </summary>
    [Fact]
    public async Task ReviewDefect_AHoldExpiringAfterABalanceLowWritesBalanceRecovered()
    {
        var model = await NewModel(1_000_000m, 1_000_000m); // 1 token = 1
        var user = await NewUser(); // 10
        Assert.True((await Alerts(AccountKind.User, user).SetAlerts([5m])).IsOk);
        var hold = (await Usage.PlaceHold(new HoldRequest(Guid.NewGuid(), null, user, model, 0, 8, 60))).Value!; // available 2: low

        Fixture.Clock.Advance(TimeSpan.FromSeconds(61)); // nobody calls: the account's expiry timer records it
        await UntilStored(hold.HoldId, "expired");

        Assert.Equal([(BillingEventTypes.BalanceLow, 5m), (BillingEventTypes.BalanceRecovered, 5m)], await Events(user));
        // Written by the write that recorded the expiry (E1), naming the available it left.
        Assert.Equal(1, await Scalar(
            "SELECT count(DISTINCT txid) FROM billing_event WHERE scope_id = $1 AND type IN ('hold.expired', 'balance.recovered')", user));
        Assert.Equal(1, await Scalar(
            "SELECT count(*) FROM billing_event WHERE scope_id = $1 AND type = 'balance.recovered' AND (data->>'available')::numeric = 10", user));

        Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 6, 0))).IsOk); // 10 → 4: low again
        Assert.Equal(
            [(BillingEventTypes.BalanceLow, 5m), (BillingEventTypes.BalanceRecovered, 5m), (BillingEventTypes.BalanceLow, 5m)],
            await Events(user));
    }

    /// <summary>
    /// The same when the account is not active as its hold expires (the expiry queue or scan activates it to record
    /// the expiry): the freshly loaded account still knows what its last write left available.
    /// </summary>
    [Fact]
    public async Task ReviewDefect_AHoldExpiringWhileItsAccountIsDeactivatedWritesBalanceRecovered()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser();
        Assert.True((await Alerts(AccountKind.User, user).SetAlerts([5m])).IsOk);
        Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1, 0))).IsOk); // 9
        var hold = (await Usage.PlaceHold(new HoldRequest(Guid.NewGuid(), null, user, model, 0, 7, 60))).Value!; // available 2: low
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IUserGrain>(user));

        Fixture.Clock.Advance(TimeSpan.FromSeconds(61));
        await UntilStored(hold.HoldId, "expired");
        Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 5, 0))).IsOk); // 9 → 4: low again

        Assert.Equal(
            [(BillingEventTypes.BalanceLow, 5m), (BillingEventTypes.BalanceRecovered, 5m), (BillingEventTypes.BalanceLow, 5m)],
            await Events(user));
    }

    /// <summary>
    /// A pro account whose quota is used up and balance 0 (low); when the cycle ends its quota is back, and the write
    /// that records the cycle reset writes the recovered, at the reset row.
    /// </summary>
    [Fact]
    public async Task ReviewDefect_AnEndedQuotaCycleAfterABalanceLowWritesBalanceRecovered()
    {
        var model = await NewModel(1_000_000m, 0.0001m); // 1 input token = 1
        var user = await NewUser(balance: 0m);
        Assert.True((await Grains.GetGrain<IUserGrain>(user).ChangePlan(new PlanChange(true, 5m))).IsOk); // available 5
        Assert.True((await Alerts(AccountKind.User, user).SetAlerts([2m])).IsOk);
        Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 5, 0))).IsOk); // quota used: 0, low

        Fixture.Clock.Advance(TimeSpan.FromDays(32)); // the cycle ends: 5 of quota again
        Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1, 0))).IsOk); // reset, then 4

        Assert.Equal([(BillingEventTypes.BalanceLow, 2m), (BillingEventTypes.BalanceRecovered, 2m)], await Events(user));
        var reset = (await History(AccountKind.User, user)).Single(r => r.Reason == HistoryReasons.QuotaCycleReset);
        Assert.Equal(1, await Scalar(
            "SELECT count(*) FROM billing_event WHERE scope_id = $1 AND type = 'balance.recovered' AND account_seq = $2", user, reset.Sequence));

        Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 2, 0))).IsOk); // 4 → 2: low again
        Assert.Equal(
            [(BillingEventTypes.BalanceLow, 2m), (BillingEventTypes.BalanceRecovered, 2m), (BillingEventTypes.BalanceLow, 2m)],
            await Events(user));
    }

    /// <summary>
    /// GET and PUT alerts computed <c>crossed</c> from the committed state without first writing what time had made
    /// due, unlike GET billing: a grant past its expiry still counted as available until the grant clock swept it.
    /// </summary>
    [Fact]
    public async Task ReviewDefect_AlertsCrossedDoesNotCountAGrantThatHasExpired()
    {
        var read = await NewUser(); // 10
        var written = await NewUser();
        var expiresAt = Fixture.Clock.GetUtcNow().AddHours(1);
        foreach (var user in new[] { read, written })
        {
            var grant = await Grains.GetGrain<IUserGrain>(user).Grant(new GrantInput(Guid.NewGuid(), 5m, GrantCategory.Promotional, 0, null, expiresAt, null));
            Assert.True(grant.IsOk, grant.Problem?.Detail); // 15
        }

        var set = await Alerts(AccountKind.User, read).SetAlerts([12m]);
        Assert.Empty(set.Value!.Crossed);

        Fixture.Clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(2)); // before the grant clock's next sweep (5 s)
        var got = await Alerts(AccountKind.User, read).GetAlerts();
        var put = await Alerts(AccountKind.User, written).SetAlerts([12m]);

        Assert.Equal([12m], got.Value!.Crossed);
        Assert.Equal([12m], put.Value!.Crossed);
        Assert.Equal(10m, (await View(AccountKind.User, read)).Available);
        Assert.Equal(10m, (await View(AccountKind.User, written)).Available);
    }

    private async Task UntilStored(Guid holdId, string status)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (await Scalar("SELECT count(*) FROM billing_hold WHERE hold_id = $1 AND status = $2", holdId, status) == 0)
        {
            if (started.Elapsed > TimeSpan.FromSeconds(15)) Assert.Fail($"hold {holdId} was not stored as {status} within 15 s");
            await Task.Delay(100);
        }
    }

    private async Task<(string Type, decimal? Threshold)[]> Events(Guid account)
    {
        await using var connection = Fixture.OpenDatabase();
        await using var command = new NpgsqlCommand(
            "SELECT type, threshold FROM billing_event WHERE scope_id = $1 AND type IN ('balance.low', 'balance.recovered') ORDER BY txid, seq", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = account });
        var list = new List<(string, decimal?)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) list.Add((reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetDecimal(1)));
        return list.ToArray();
    }
}
