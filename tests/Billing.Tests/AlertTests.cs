using System.Text.Json;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// Balance alerts and the outbox: thresholds per account, balance.low once per downward crossing, balance.recovered,
/// balance.depleted and billing_error.created/resolved written by the statement of their change (E1, also checked
/// in SQL after every test by <see cref="BillingTestBase"/>), and reading the outbox.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AlertTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    private IBalanceAlertsGrain Alerts(AccountKind kind, Guid id) => Account(kind, id).AsReference<IBalanceAlertsGrain>();

    [Fact]
    public async Task Balance_low_fires_once_per_downward_crossing_per_threshold_and_recovered_after_a_top_up_re_arms_them()
    {
        var model = await NewModel(1_000_000m, 0.0001m); // 1 input token costs exactly 1
        var user = await NewUser();
        var set = await Alerts(AccountKind.User, user).SetAlerts([2.00m, 5.00m]);
        Assert.True(set.IsOk, set.Problem?.Detail);
        Assert.Equal([5.00m, 2.00m], set.Value!.Thresholds);
        Assert.Empty(set.Value.Crossed);

        async Task Spend(long amount) => Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, amount, 0))).IsOk);

        await Spend(4); // 10 → 6
        Assert.Empty(await Events(user));
        await Spend(2); // 6 → 4: crosses 5
        await Spend(1); // 4 → 3
        await Spend(2); // 3 → 1: crosses 2
        Assert.Equal([(BillingEventTypes.BalanceLow, 5.00m), (BillingEventTypes.BalanceLow, 2.00m)], await Events(user));
        Assert.Equal([5.00m, 2.00m], (await Alerts(AccountKind.User, user).GetAlerts()).Value!.Crossed);

        await Account(AccountKind.User, user).Credit(new AccountCredit(3m, HistoryReasons.TopUp, Guid.NewGuid())); // 1 → 4: re-arms 2, not above 5
        await Spend(3); // 4 → 1: crosses 2 again
        await Account(AccountKind.User, user).Credit(new AccountCredit(9m, HistoryReasons.TopUp, Guid.NewGuid())); // 1 → 10: recovered
        await Spend(6); // 10 → 4: crosses 5 again

        Assert.Equal(
            [(BillingEventTypes.BalanceLow, 5.00m), (BillingEventTypes.BalanceLow, 2.00m), (BillingEventTypes.BalanceLow, 2.00m),
             (BillingEventTypes.BalanceRecovered, 5.00m), (BillingEventTypes.BalanceLow, 5.00m)],
            await Events(user));

        // Each event names its history row and the account's figures after it.
        var data = await EventData(user, BillingEventTypes.BalanceRecovered);
        Assert.Equal("user", data.GetProperty("scope").GetString());
        Assert.Equal(user, data.GetProperty("scopeId").GetGuid());
        Assert.Equal(10.0000m, data.GetProperty("balance").GetDecimal());
        Assert.Equal(10.0000m, data.GetProperty("available").GetDecimal());
        Assert.Equal("USD", data.GetProperty("currency").GetString());
        Assert.Equal("5.00", data.GetProperty("threshold").GetRawText());
    }

    [Fact]
    public async Task ReviewDefect_A_usage_sent_during_a_threshold_change_is_judged_against_the_new_thresholds()
    {
        var model = await NewModel(1_000_000m, 0.0001m); // 1 input token costs exactly 1
        var user = await NewUser(); // 10
        Assert.True((await Alerts(AccountKind.User, user).SetAlerts([100m])).IsOk);

        Task<BillingResult<AlertSettings>> change;
        Task<BillingResult<UsageReceipt>> usage;
        await using (var connection = Fixture.OpenDatabase())
        {
            // The change's save waits on the thresholds' row; a usage sent meanwhile must wait for the change, not
            // commit judged against the old thresholds while the new ones are stored as applying from before it.
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var lockRow = new NpgsqlCommand("SELECT 1 FROM account_alert WHERE scope_id = $1 FOR UPDATE", connection, transaction))
            {
                lockRow.Parameters.Add(new NpgsqlParameter { Value = user });
                await lockRow.ExecuteNonQueryAsync();
            }

            change = Alerts(AccountKind.User, user).SetAlerts([5m]);
            await Billing.Testing.LockWaits.UntilBlockedByAsync(Fixture.ConnectionString, connection);
            usage = Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 7, 0)); // 10 → 3: crosses 5
            Assert.NotSame(usage, await Task.WhenAny(usage, Task.Delay(TimeSpan.FromMilliseconds(500))));
            await transaction.RollbackAsync();
        }

        Assert.Equal([5m], (await change).Value!.Thresholds);
        Assert.True((await usage).IsOk);
        Assert.Equal([(BillingEventTypes.BalanceLow, 5m)], await Events(user));
        Assert.Equal([5m], (await Alerts(AccountKind.User, user).GetAlerts()).Value!.Crossed);
    }

    [Fact]
    public async Task Thresholds_under_concurrent_usage_fire_exactly_once_per_crossing()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 0m);
        var project = await NewProject(balance: 50m);
        Assert.True((await Alerts(AccountKind.Project, project).SetAlerts([40m, 25m, 10m, 0.5m])).IsOk);

        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ =>
            Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1, 0))));

        Assert.Equal(50, results.Count(r => r.IsOk));
        var lows = (await Events(project)).Where(e => e.Type == BillingEventTypes.BalanceLow).Select(e => e.Threshold).ToArray();
        Assert.Equal([40m, 25m, 10m, 0.5m], lows);
        // Every refusal stored one billing error, and with it one balance.depleted and one billing_error.created.
        Assert.Equal(150, await Scalar("SELECT count(*) FROM billing_event WHERE scope_id = $1 AND type = 'balance.depleted'", project));
        Assert.Equal(150, await Scalar("SELECT count(*) FROM billing_event WHERE scope_id = $1 AND type = 'billing_error.created'", project));
        Assert.Equal([40m, 25m, 10m, 0.5m], (await Alerts(AccountKind.Project, project).GetAlerts()).Value!.Crossed);
    }

    [Fact]
    public async Task A_refusal_writes_depleted_and_created_and_a_top_up_resolves_with_one_resolved_event()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 1m);

        var refused = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 5, 0));
        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        var errorId = refused.Problem.BillingErrorId!.Value;
        var depleted = await EventData(user, BillingEventTypes.BalanceDepleted);
        Assert.Equal(errorId, depleted.GetProperty("billingErrorId").GetGuid());
        Assert.Equal(1m, depleted.GetProperty("available").GetDecimal());
        Assert.Equal(errorId, (await EventData(user, BillingEventTypes.BillingErrorCreated)).GetProperty("billingErrorId").GetGuid());

        await Account(AccountKind.User, user).Credit(new AccountCredit(20m, HistoryReasons.TopUp, Guid.NewGuid()));
        var resolved = await EventData(user, BillingEventTypes.BillingErrorResolved);
        Assert.Equal(errorId, resolved.GetProperty("billingErrorId").GetGuid());
        Assert.Equal(21m, resolved.GetProperty("balance").GetDecimal());

        // Resolving it by hand again changes nothing and writes no second event.
        Assert.True((await Grains.GetGrain<IBillingErrorsGrain>(0).Resolve(errorId)).IsOk);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_event WHERE billing_error_id = $1 AND type = 'billing_error.resolved'", errorId));
    }

    [Fact]
    public async Task Resolving_an_open_billing_error_by_hand_writes_its_resolved_event_once()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 0m);
        var project = await NewProject(balance: 0m);
        var refused = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 3, 0));
        var errorId = refused.Problem!.BillingErrorId!.Value;

        var both = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Grains.GetGrain<IBillingErrorsGrain>(0).Resolve(errorId)));

        Assert.All(both, r => Assert.True(r.Value!.Resolved));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_event WHERE billing_error_id = $1 AND type = 'billing_error.resolved'", errorId));
        Assert.Equal("project", (await EventData(project, BillingEventTypes.BillingErrorResolved)).GetProperty("scope").GetString());
    }

    [Fact]
    public async Task Bad_thresholds_are_refused_and_change_nothing_and_thresholds_survive_a_reactivation()
    {
        var user = await NewUser();
        var alerts = Alerts(AccountKind.User, user);
        Assert.True((await alerts.SetAlerts([7m, 3m])).IsOk);

        Assert.Equal(BillingStatus.InvalidInput, (await alerts.SetAlerts(Enumerable.Range(1, 11).Select(i => (decimal)i).ToArray())).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await alerts.SetAlerts([5m, 0m])).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await alerts.SetAlerts([-1m])).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await alerts.SetAlerts([2m, 2m])).Problem!.Status);
        Assert.Equal(BillingStatus.AccountNotFound, (await Alerts(AccountKind.Project, Guid.NewGuid()).SetAlerts([1m])).Problem!.Status);

        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IUserGrain>(user));
        var read = await alerts.GetAlerts();
        Assert.Equal([7m, 3m], read.Value!.Thresholds);
        Assert.Empty(read.Value.Crossed);
        Assert.Equal(10, (await alerts.SetAlerts(Enumerable.Range(1, 10).Select(i => (decimal)i).ToArray())).Value!.Thresholds.Length);
        Assert.Equal([10m], (await alerts.GetAlerts()).Value!.Crossed);
    }

    [Fact]
    public async Task Events_page_oldest_first_by_cursor_with_type_and_scope_filters()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        await Alerts(AccountKind.User, user).SetAlerts([9m, 8m, 7m]);
        Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 4, 0))).IsOk); // 3 lows in one row
        Assert.False((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 100, 0))).IsOk); // depleted + created

        var events = Grains.GetGrain<IBillingEventsGrain>(0);
        var all = await WaitForEvents(new BillingEventQuery(null, null, BillingScopes.User, user, 500), 5);
        Assert.Equal([BillingEventTypes.BalanceLow, BillingEventTypes.BalanceLow, BillingEventTypes.BalanceLow, BillingEventTypes.BalanceDepleted, BillingEventTypes.BillingErrorCreated],
            all.Items.Select(e => e.Type).ToArray());

        var first = (await events.List(new BillingEventQuery(null, null, BillingScopes.User, user, 2))).Value!;
        Assert.Equal(2, first.Items.Length);
        var second = (await events.List(new BillingEventQuery(first.NextCursor, null, BillingScopes.User, user, 2))).Value!;
        var third = (await events.List(new BillingEventQuery(second.NextCursor, null, BillingScopes.User, user, 2))).Value!;
        Assert.Equal(all.Items.Select(e => e.Id), first.Items.Concat(second.Items).Concat(third.Items).Select(e => e.Id));
        var empty = (await events.List(new BillingEventQuery(third.NextCursor, null, BillingScopes.User, user, 2))).Value!;
        Assert.Empty(empty.Items);
        Assert.Equal(third.NextCursor, empty.NextCursor); // a poller keeps its position

        var depletedOnly = (await events.List(new BillingEventQuery(null, [BillingEventTypes.BalanceDepleted], BillingScopes.User, user, 10))).Value!;
        Assert.Equal(BillingEventTypes.BalanceDepleted, Assert.Single(depletedOnly.Items).Type);

        Assert.Equal(BillingStatus.InvalidInput, (await events.List(new BillingEventQuery(null, null, null, null, 0))).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await events.List(new BillingEventQuery(null, null, null, null, 501))).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await events.List(new BillingEventQuery("nonsense", null, null, null, 10))).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await events.List(new BillingEventQuery(null, ["balance.sideways"], null, null, 10))).Problem!.Status);
    }

    /// <summary>An event becomes readable once every transaction older than it has ended: wait for it briefly.</summary>
    private async Task<BillingEventPage> WaitForEvents(BillingEventQuery query, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var page = (await Grains.GetGrain<IBillingEventsGrain>(0).List(query)).Value!;
            if (page.Items.Length >= count || DateTime.UtcNow > deadline) return page;
            await Task.Delay(50);
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

    private async Task<JsonElement> EventData(Guid account, string type)
    {
        await using var connection = Fixture.OpenDatabase();
        await using var command = new NpgsqlCommand(
            "SELECT data::text FROM billing_event WHERE scope_id = $1 AND type = $2 ORDER BY txid DESC, seq DESC LIMIT 1", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = account });
        command.Parameters.Add(new NpgsqlParameter { Value = type });
        var text = (string?)await command.ExecuteScalarAsync() ?? throw new Xunit.Sdk.XunitException($"no {type} event for {account}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
