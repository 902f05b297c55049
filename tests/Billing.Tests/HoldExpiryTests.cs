using Billing.Accounts;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Billing.Tests;

/// <summary>Holds expire by themselves (H2): reads release them at once; the silo's expiry queue or the scan records it with nobody calling.</summary>
[Collection(ClockClusterCollection.Name)]
public sealed class HoldExpiryTests(ClockClusterFixture fixture) : BillingTestBase(fixture)
{
    private Task<BillingResult<HoldView>> Place(Guid user, Guid model, long maxOutput, int ttl) =>
        Usage.PlaceHold(new HoldRequest(Guid.NewGuid(), null, user, model, 0, maxOutput, ttl));

    /// <summary>The test silo's expiry queue.</summary>
    private HoldExpiryQueue ExpiryQueue => Fixture.Cluster.Silos[0].ServiceProvider.GetRequiredService<HoldExpiryQueue>();

    /// <summary>Polls the stored status of a hold until it is <paramref name="status"/>; the time it took.</summary>
    private async Task<TimeSpan> UntilStored(Guid holdId, string status, TimeSpan within)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (started.Elapsed < within)
        {
            if (await Scalar("SELECT count(*) FROM billing_hold WHERE hold_id = $1 AND status = $2", holdId, status) == 1) return started.Elapsed;
            await Task.Delay(100);
        }

        Assert.Fail($"hold {holdId} was not stored as {status} within {within}");
        return within;
    }

    [Fact]
    public async Task An_expired_hold_is_released_at_once_and_recorded_within_seconds_with_no_caller()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var hold = (await Place(user, model, 6, ttl: 60)).Value!;
        Assert.Equal(4m, (await View(AccountKind.User, user)).Available);

        Fixture.Clock.Advance(TimeSpan.FromSeconds(61));
        await UntilStored(hold.HoldId, "expired", TimeSpan.FromSeconds(5)); // nobody calls: the account's timer records it

        var account = await View(AccountKind.User, user);
        Assert.Equal((10.0000m, 0m, 10.0000m), (account.Balance, account.Held, account.Available));
        var stored = (await Usage.GetHold(hold.HoldId)).Value!;
        Assert.Equal((HoldStatus.Expired, hold.ExpiresAt), (stored.Status, stored.EndedAt));
    }

    /// <summary>
    /// Two thousand holds of one account that expire at the same moment are released together at once (the account's
    /// running total less the expired ones), and recorded in writes of at most a thousand, each with its hold.expired
    /// event naming the same available; a hold that expires later keeps holding.
    /// </summary>
    [Fact]
    public async Task Thousands_of_holds_expiring_together_are_released_at_once_and_each_recorded_once_with_its_event()
    {
        var model = await NewModel(1_000m, 1_000m); // 0.001 per token
        var user = await NewUser(); // 10
        var placed = await Task.WhenAll(Enumerable.Range(0, 2_000).Select(_ => Place(user, model, 2, ttl: 60)));
        Assert.All(placed, p => Assert.True(p.IsOk, p.Problem?.Detail));
        var later = (await Place(user, model, 2, ttl: 600)).Value!;
        Assert.Equal((4.002m, 5.998m), ((await View(AccountKind.User, user)).Held, (await View(AccountKind.User, user)).Available));

        Fixture.Clock.Advance(TimeSpan.FromSeconds(61));
        var released = await View(AccountKind.User, user);
        Assert.Equal((0.002m, 9.998m), (released.Held, released.Available));

        var started = System.Diagnostics.Stopwatch.StartNew();
        while (await Scalar("SELECT count(*) FROM billing_hold WHERE account_id = $1 AND status = 'expired'", user) < 2_000 && started.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(100);
        Assert.Equal(2_000, await Scalar("SELECT count(*) FROM billing_hold WHERE account_id = $1 AND status = 'expired'", user));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_hold WHERE account_id = $1 AND status = 'active' AND hold_id = $2", user, later.HoldId));
        Assert.Equal(2_000, await Scalar(
            "SELECT count(DISTINCT data->>'holdId') FROM billing_event WHERE scope_id = $1 AND type = 'hold.expired' AND (data->>'available')::numeric = 9.998", user));
        Assert.Equal(2_000, await Scalar("SELECT count(*) FROM billing_event WHERE scope_id = $1 AND type = 'hold.expired'", user));
        // In writes of at most ExpireHoldsOperation.MaxPerWrite each: no statement holds up the accounts sharing its transaction for long.
        Assert.Equal(ExpireHoldsOperation.MaxPerWrite, await Scalar(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM billing_event WHERE scope_id = $1 AND type = 'hold.expired' GROUP BY txid) w", user));
        // The grain moves its queue entry on after its last expiry write commits: wait for it rather than race it.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (ExpiryQueue.ExpectedAt(AccountKind.User, user) != later.ExpiresAt && waited.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(50);
        Assert.Equal(later.ExpiresAt, ExpiryQueue.ExpectedAt(AccountKind.User, user));
    }

    [Fact]
    public async Task ReviewDefect_A_hold_another_activation_placed_is_recorded_expired_when_the_scan_calls_the_account()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        Assert.Equal(10m, (await View(AccountKind.User, user)).Available); // the grain holds the account, no holds

        // Another activation places a hold of 2, as its commit writes a placement: the hold's row and holds_seq, no
        // history row, so the version stays. Then it is gone, and this activation never heard of the hold.
        var holdId = Guid.NewGuid();
        var placedAt = Fixture.Clock.GetUtcNow().UtcDateTime;
        await using (var connection = Fixture.OpenDatabase())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await using (var insert = new NpgsqlCommand("""
                INSERT INTO billing_hold (hold_id, scope, account_id, user_id, model_id, input_tokens, max_output_tokens,
                    input_price_per_million, output_price_per_million, amount, currency, ttl_seconds, status, expires_at, created_at)
                VALUES ($1, 'user', $2, $2, $3, 0, 2, 1000000, 1000000, 2, 'USD', 60, 'active', $4, $5)
                """, connection, transaction))
            {
                insert.Parameters.Add(new NpgsqlParameter { Value = holdId });
                insert.Parameters.Add(new NpgsqlParameter { Value = user });
                insert.Parameters.Add(new NpgsqlParameter { Value = model });
                insert.Parameters.Add(new NpgsqlParameter { Value = placedAt.AddSeconds(60) });
                insert.Parameters.Add(new NpgsqlParameter { Value = placedAt });
                await insert.ExecuteNonQueryAsync();
            }

            await using (var seq = new NpgsqlCommand("UPDATE user_billing SET holds_seq = holds_seq + 1 WHERE \"user\" = $1", connection, transaction))
            {
                seq.Parameters.Add(new NpgsqlParameter { Value = user });
                Assert.Equal(1, await seq.ExecuteNonQueryAsync());
            }

            await transaction.CommitAsync();
        }

        // Past its expiry the scan finds it in the database and calls the account, as below (and on its own).
        Fixture.Clock.Advance(TimeSpan.FromSeconds(61));
        await Grains.GetGrain<IUserGrain>(user).ExpireDueHolds();

        await UntilStored(holdId, "expired", TimeSpan.FromSeconds(10));
        Assert.Equal(10m, (await View(AccountKind.User, user)).Available);
    }

    /// <summary>
    /// The silo's expiry queue holds an account while it has active holds, at its earliest expiry, and lets it go when
    /// the last one ends; a deactivated account is called back when its hold expires (no grain timer per account).
    /// </summary>
    [Fact]
    public async Task The_expiry_queue_holds_an_account_while_it_has_active_holds_and_calls_it_back_after_deactivation()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var later = (await Place(user, model, 2, ttl: 600)).Value!;
        var sooner = (await Place(user, model, 2, ttl: 300)).Value!;
        Assert.Equal(sooner.ExpiresAt, ExpiryQueue.ExpectedAt(AccountKind.User, user));
        Assert.True((await Usage.CaptureHold(new HoldCapture(sooner.HoldId, 0, 1))).IsOk);
        Assert.Equal(sooner.ExpiresAt, ExpiryQueue.ExpectedAt(AccountKind.User, user)); // early now: moved on when it fires
        Assert.Equal(0, await Grains.GetGrain<IUserGrain>(user).ExpireDueHolds());
        Assert.Equal(later.ExpiresAt, ExpiryQueue.ExpectedAt(AccountKind.User, user));
        Assert.True((await Usage.VoidHold(later.HoldId)).IsOk);
        Assert.Null(ExpiryQueue.ExpectedAt(AccountKind.User, user)); // no active hold left

        var expiring = (await Place(user, model, 3, ttl: 40)).Value!;
        var management = Grains.GetGrain<IManagementGrain>(0);
        await management.ForceActivationCollection(TimeSpan.Zero);
        // The account really is deactivated, and the queue still holds it: this fixture's scan (every 1 s, 1 s grace)
        // would record the expiry too, so without these the test passed even if deactivation dropped the entry.
        var accountId = Grains.GetGrain<IUserGrain>(user).GetGrainId();
        Assert.DoesNotContain(await management.GetDetailedGrainStatistics(), s => s.GrainId == accountId);
        Assert.Equal(expiring.ExpiresAt, ExpiryQueue.ExpectedAt(AccountKind.User, user));
        Fixture.Clock.Advance(TimeSpan.FromSeconds(41));
        await UntilStored(expiring.HoldId, "expired", TimeSpan.FromSeconds(5)); // the queue looks every second
        Assert.Equal(9.0000m, (await View(AccountKind.User, user)).Available);
    }

    /// <summary>
    /// While recording an account's expiry fails (here a trigger refuses that hold's update; in life the database is
    /// down), the queue calls the account again after 2 s, then 4 s, not on every tick; once the write succeeds the
    /// expiry is recorded and the account leaves the queue.
    /// </summary>
    [Fact]
    public async Task A_failing_expiry_is_retried_with_back_off_and_recorded_once_the_database_accepts_it()
    {
        Assert.Equal([2, 4, 8, 16, 32, 60, 60], Enumerable.Range(1, 7).Select(n => HoldExpiryQueue.RetryDelay(n).TotalSeconds));
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var hold = (await Place(user, model, 2, ttl: 60)).Value!;
        var trigger = "refuse_" + hold.HoldId.ToString("N");
        await Scalar($"""
            CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
            CREATE TRIGGER {trigger} BEFORE UPDATE ON billing_hold FOR EACH ROW WHEN (OLD.hold_id = '{hold.HoldId}') EXECUTE FUNCTION {trigger}();
            """);
        try
        {
            Fixture.Clock.Advance(TimeSpan.FromSeconds(61));
            // The test clock also runs in real time: the call fails on the queue's next tick, within about a second.
            var advancedAt = Fixture.Clock.GetUtcNow();
            AssertPutOffBy(TimeSpan.FromSeconds(2), advancedAt, await UntilExpectedAfter(user, advancedAt));
            Fixture.Clock.Advance(TimeSpan.FromSeconds(2));
            var advancedAgainAt = Fixture.Clock.GetUtcNow();
            AssertPutOffBy(TimeSpan.FromSeconds(4), advancedAgainAt, await UntilExpectedAfter(user, advancedAgainAt));
            Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_hold WHERE hold_id = $1 AND status = 'active'", hold.HoldId));
            Assert.Equal(10.0000m, (await View(AccountKind.User, user)).Available); // reads release it meanwhile
        }
        finally
        {
            await Scalar($"DROP TRIGGER {trigger} ON billing_hold; DROP FUNCTION {trigger}();");
        }

        Fixture.Clock.Advance(TimeSpan.FromSeconds(4));
        await UntilStored(hold.HoldId, "expired", TimeSpan.FromSeconds(5));
        Assert.Null(ExpiryQueue.ExpectedAt(AccountKind.User, user));
    }

    /// <summary>
    /// The queue put the account off by <paramref name="delay"/> from its failed call, which came after the clock moved
    /// (<paramref name="movedAt"/>) and before the new expectation was seen: however long the call took to come on a busy
    /// machine, the expectation is the failure's time plus the delay, between those two bounds.
    /// </summary>
    private static void AssertPutOffBy(TimeSpan delay, DateTimeOffset movedAt, (DateTimeOffset ExpectedAt, DateTimeOffset SeenAt) put) =>
        Assert.InRange(put.ExpectedAt, movedAt + delay, put.SeenAt + delay);

    /// <summary>Polls the queue until it expects the account later than <paramref name="after"/> (a failed call put it off), and when that was seen.</summary>
    private async Task<(DateTimeOffset ExpectedAt, DateTimeOffset SeenAt)> UntilExpectedAfter(Guid user, DateTimeOffset after)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (started.Elapsed < TimeSpan.FromSeconds(5))
        {
            if (ExpiryQueue.ExpectedAt(AccountKind.User, user) is { } at && at > after) return (at, Fixture.Clock.GetUtcNow());
            await Task.Delay(50);
        }

        Assert.Fail($"the expiry queue did not put account {user} off after {after:O}");
        return (after, after);
    }

    [Fact]
    public async Task Reads_release_an_expired_hold_before_its_expiry_is_recorded()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser();
        var hold = (await Place(user, model, 10, ttl: 120)).Value!;

        Fixture.Clock.Advance(TimeSpan.FromSeconds(121));
        var account = await View(AccountKind.User, user);
        var spent = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 10, 0));

        Assert.Equal((0m, 10.0000m), (account.Held, account.Available));
        Assert.True(spent.IsOk, spent.Problem?.Detail);
        Assert.Equal(HoldStatus.Expired, (await Usage.GetHold(hold.HoldId)).Value!.Status);
        await UntilStored(hold.HoldId, "expired", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task An_account_that_is_not_active_has_its_expiries_recorded_by_the_scan()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser();
        var hold = (await Place(user, model, 3, ttl: 30)).Value!;
        // As if the account's silo had failed: its activation and its silo's expiry queue entry are gone.
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        ExpiryQueue.Forget(AccountKind.User, user);

        Fixture.Clock.Advance(TimeSpan.FromSeconds(31));
        await UntilStored(hold.HoldId, "expired", TimeSpan.FromSeconds(10));
        Assert.Equal(10.0000m, (await View(AccountKind.User, user)).Available);
    }

    [Fact]
    public async Task ReviewDefect_A_hold_captured_late_before_its_expiry_was_recorded_has_its_hold_expired_event()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var hold = (await Place(user, model, 4, ttl: 30)).Value!;
        Fixture.Clock.Advance(TimeSpan.FromSeconds(31));

        // At once: the expiry queue calls the account on its next tick, up to a second later, so the capture records it.
        var late = await Usage.CaptureHold(new HoldCapture(hold.HoldId, 0, 3));

        Assert.True(late.IsOk && late.Value!.Late, late.Problem?.Detail);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_event WHERE type = 'hold.expired' AND (data->>'holdId')::uuid = $1", hold.HoldId));
        Assert.Equal((HoldStatus.Expired, true), ((await Usage.GetHold(hold.HoldId)).Value!.Status, (await Usage.GetHold(hold.HoldId)).Value!.Capture!.Late));
    }

    [Fact]
    public async Task A_late_capture_charges_the_pinned_payer_whole_or_is_refused_with_one_billing_error()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var slow = (await Place(user, model, 4, ttl: 30)).Value!;
        var slower = (await Place(user, model, 4, ttl: 30)).Value!;
        Fixture.Clock.Advance(TimeSpan.FromSeconds(31));

        var late = (await Usage.CaptureHold(new HoldCapture(slow.HoldId, 0, 6))).Value!;
        var retried = (await Usage.CaptureHold(new HoldCapture(slow.HoldId, 0, 6))).Value!;
        var refused = await Usage.CaptureHold(new HoldCapture(slower.HoldId, 0, 5)); // 4 left
        var refusedAgain = await Usage.CaptureHold(new HoldCapture(slower.HoldId, 0, 5));

        Assert.Equal((true, 6m, 6m, 0m, 0m, 4m), (late.Late, late.Cost, late.Charged, late.Released, late.Shortfall, late.BalanceAfter));
        Assert.Equal(late, retried);
        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        Assert.Equal(refused.Problem.BillingErrorId, refusedAgain.Problem!.BillingErrorId);
        Assert.NotNull(refused.Problem.BillingErrorId);
        Assert.Equal(1, await BillingErrorCount(user));
        var stored = (await Usage.GetHold(slow.HoldId)).Value!;
        Assert.Equal((HoldStatus.Expired, true), (stored.Status, stored.Capture!.Late));
    }

    /// <summary>
    /// Review defect: a late capture refused for balance claimed nothing, so a copy of it still on its way to the payer
    /// (the caller's retry after a timeout, or the gateway's resend) charged the usage after a top-up, although the
    /// caller had been answered 402. The refusal now claims the capture's usage id: the copy answers that refusal.
    /// </summary>
    [Fact]
    public async Task ReviewDefect_ALateCaptureCopyArrivingAfterItsRefusalWasAnsweredCannotCharge()
    {
        var model = await NewModel(1_000_000m, 1_000_000m); // 1 per token
        var user = await NewUser(); // 10
        var hold = (await Place(user, model, 4, ttl: 30)).Value!;
        Fixture.Clock.Advance(TimeSpan.FromSeconds(31));
        var capture = new HoldCapture(hold.HoldId, 0, 11);
        var refused = await Usage.CaptureHold(capture);
        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        Assert.True((await Account(AccountKind.User, user).Credit(new AccountCredit(5m, HistoryReasons.TopUp, Guid.NewGuid()))).IsOk); // 15

        var lateCopy = await Grains.GetGrain<ITestChargerGrain>(0).CaptureHold(AccountKind.User, user, capture);

        Assert.Equal((BillingStatus.InsufficientBalance, refused.Problem.BillingErrorId), (lateCopy.Problem?.Status, lateCopy.Problem?.BillingErrorId));
        Assert.Equal(15.0000m, (await View(AccountKind.User, user)).Balance);
        Assert.Equal(0, await Scalar("SELECT count(*) FROM user_billing_history WHERE \"user\" = $1 AND hold_id IS NOT NULL", user));
        Assert.Equal(1, await BillingErrorCount(user));
    }

    /// <summary>
    /// A late capture's usage id keeps its first answer, as a usage id does: refused, it stays refused (same billing
    /// error, none added) after the payer could cover it, for concurrent retries too; a new usage id is charged, whole,
    /// and from then on every capture of the hold answers that receipt (nothing is charged under the refused id).
    /// </summary>
    [Fact]
    public async Task A_refused_late_capture_answers_its_refusal_after_a_top_up_and_a_new_usage_id_is_charged()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var hold = (await Place(user, model, 4, ttl: 30)).Value!;
        Fixture.Clock.Advance(TimeSpan.FromSeconds(31));
        var refused = await Usage.CaptureHold(new HoldCapture(hold.HoldId, 0, 11));
        await Account(AccountKind.User, user).Credit(new AccountCredit(5m, HistoryReasons.TopUp, Guid.NewGuid())); // 15

        var retries = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Usage.CaptureHold(new HoldCapture(hold.HoldId, 0, 11))));
        var newUsageId = await Usage.CaptureHold(new HoldCapture(hold.HoldId, 0, 11, Guid.NewGuid()));
        var refusedIdAfterTheCapture = await Usage.CaptureHold(new HoldCapture(hold.HoldId, 0, 11)); // the hold's receipt: nothing more charged

        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        Assert.All(retries, r => Assert.Equal((BillingStatus.InsufficientBalance, refused.Problem.BillingErrorId, refused.Problem.Detail),
            (r.Problem!.Status, r.Problem.BillingErrorId, r.Problem.Detail)));
        Assert.True(newUsageId.IsOk, newUsageId.Problem?.Detail);
        Assert.Equal((true, 11m, 4m), (newUsageId.Value!.Late, newUsageId.Value.Charged, newUsageId.Value.BalanceAfter));
        Assert.Equal(newUsageId.Value, refusedIdAfterTheCapture.Value);
        Assert.Equal(4.0000m, (await View(AccountKind.User, user)).Balance);
        Assert.Equal(1, await BillingErrorCount(user));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM usage_record WHERE usage_id = $1 AND outcome = 'refused' AND billing_error_id = $2",
            hold.HoldId, refused.Problem.BillingErrorId!.Value));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_error WHERE id = $1 AND hold_id = $2 AND usage_id = $2", refused.Problem.BillingErrorId!.Value, hold.HoldId));
    }

    /// <summary>A late capture whose usage id answers another usage is a conflict, whether or not the payer could cover it.</summary>
    [Fact]
    public async Task A_late_capture_with_the_usage_id_of_another_usage_is_a_conflict()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var hold = (await Place(user, model, 4, ttl: 30)).Value!;
        var usageId = Guid.NewGuid();
        Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(usageId, user, model, 1, 0))).IsOk); // 9
        Fixture.Clock.Advance(TimeSpan.FromSeconds(31));

        var affordable = await Usage.CaptureHold(new HoldCapture(hold.HoldId, 0, 2, usageId));
        var unaffordable = await Usage.CaptureHold(new HoldCapture(hold.HoldId, 0, 20, usageId));

        Assert.Equal(BillingStatus.HoldConflict, affordable.Problem?.Status);
        Assert.Equal(BillingStatus.HoldConflict, unaffordable.Problem?.Status);
        Assert.Equal(9.0000m, (await View(AccountKind.User, user)).Balance);
        Assert.Equal(0, await BillingErrorCount(user));
    }

    [Fact]
    public async Task Expiry_void_and_capture_racing_at_expiry_end_each_hold_once()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var holds = new List<HoldView>();
        for (var i = 0; i < 4; i++) holds.Add((await Place(user, model, 2, ttl: 45)).Value!);
        Fixture.Clock.Advance(TimeSpan.FromSeconds(46));

        var account = Grains.GetGrain<IUserGrain>(user);
        var expiries = Enumerable.Range(0, 10).Select(_ => account.ExpireDueHolds()).ToList();
        var voids = Enumerable.Range(0, 5).Select(_ => Usage.VoidHold(holds[0].HoldId)).ToList();
        var captures = Enumerable.Range(0, 5).Select(_ => Usage.CaptureHold(new HoldCapture(holds[1].HoldId, 0, 1))).ToList();
        await Task.WhenAll(expiries);
        await Task.WhenAll(voids);
        await Task.WhenAll(captures);

        Assert.All(voids, v => Assert.Equal(HoldStatus.Expired, v.Result.Value!.Status));
        Assert.All(captures, c => Assert.Equal((true, 1m), (c.Result.Value!.Late, c.Result.Value.Charged)));
        Assert.Equal(4, await Scalar("SELECT count(*) FROM billing_hold WHERE account_id = $1 AND status = 'expired'", user));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM user_billing_history WHERE \"user\" = $1 AND hold_id IS NOT NULL", user));
        Assert.Equal((9m, 0m), ((await View(AccountKind.User, user)).Balance, (await View(AccountKind.User, user)).Held));
    }
}
