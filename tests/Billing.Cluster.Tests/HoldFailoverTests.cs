using System.Diagnostics;
using Npgsql;

namespace Billing.Cluster.Tests;

/// <summary>Holds survive a silo killed with active holds (H3), expire on time without it (H2), and are captured on the survivor.</summary>
public sealed class HoldFailoverTests(ITestOutputHelper output)
{
    /// <summary>API.md: an expiry is recorded "within about a minute" after the silo holding the account fails.</summary>
    private static readonly TimeSpan ExpiryAfterFailureBound = TimeSpan.FromSeconds(75);

    [Fact]
    public async Task Active_holds_of_a_killed_silo_survive_expire_on_time_and_are_captured_on_the_survivor()
    {
        await using var cluster = await ProcessCluster.CreateAsync("holds");
        var silos = await cluster.StartActiveSilosAsync(TimeSpan.FromSeconds(15), "silo-a", "silo-b");
        var (siloA, siloB) = (silos[0], silos[1]);
        var client = await cluster.ConnectAsync(siloA.GatewayPort);
        var throughB = await cluster.ConnectAsync(siloB.GatewayPort);
        var usage = client.GetGrain<IUsageGrain>(0);
        var model = await BillingAccounts.CreateModelAsync(client);

        // At least 16 accounts with a short hold (to expire, nobody calling them after the kill) and 16 with a long one
        // (to capture on the survivor). The test is about the accounts that live on the silo killed, and placement is
        // random, so accounts are added until silo B holds some of both kinds.
        var management = client.GetGrain<IManagementGrain>(0);
        var users = new List<Guid>();
        var expiring = new List<HoldView>();
        var capturing = new List<HoldView>();
        var (expiringOnB, capturingOnB) = (0, 0);
        for (var i = 0; !(expiring.Count >= 16 && capturing.Count >= 16 && expiringOnB > 0 && capturingOnB > 0); i++)
        {
            Assert.True(i < 400, $"after {i} accounts silo B still holds {expiringOnB} to expire and {capturingOnB} to capture");
            var user = Guid.NewGuid();
            var through = i % 2 == 0 ? client : throughB;
            Assert.True((await through.GetGrain<IUserGrain>(user).Initialize()).IsOk);
            users.Add(user);
            var onB = (await management.GetActivationAddress(client.GetGrain<IUserGrain>(user)))?.Endpoint.Port == siloB.SiloPort;
            var expire = onB && (expiringOnB == 0 || capturingOnB == 0) ? expiringOnB == 0 : expiring.Count <= capturing.Count;
            var placing = through.GetGrain<IUsageGrain>(0);
            var hold = await placing.PlaceHold(new HoldRequest(Guid.NewGuid(), null, user, model, 1000, 2000, TtlSeconds: expire ? 20 : 3600));
            Assert.True(hold.IsOk, hold.Problem?.Detail);
            (expire ? expiring : capturing).Add(hold.Value!);
            if (onB && expire) expiringOnB++;
            if (onB && !expire) capturingOnB++;
        }

        output.WriteLine($"on silo B: {expiringOnB} of {expiring.Count} accounts with a hold to expire, {capturingOnB} of {capturing.Count} with one to capture");
        siloB.Process.Kill(entireProcessTree: false);
        var clock = Stopwatch.StartNew();
        output.WriteLine($"killed silo B (pid {siloB.Process.Pid}) with {expiring.Count + capturing.Count} active holds in the cluster");

        // Every acknowledged hold is stored (durable before acknowledged), and can be captured through the survivor.
        Assert.Equal(expiring.Count + capturing.Count, await Count("SELECT count(*) FROM billing_hold WHERE hold_id = ANY($1)", cluster.ConnectionString, expiring.Concat(capturing).Select(h => h.HoldId).ToArray()));
        var receipts = new List<HoldCaptureReceipt>();
        foreach (var hold in capturing)
        {
            var receipt = await Retry(() => usage.CaptureHold(new HoldCapture(hold.HoldId, 1000, 1000)), TimeSpan.FromSeconds(90));
            Assert.True(receipt.IsOk, receipt.Problem?.Detail);
            receipts.Add(receipt.Value!);
        }

        output.WriteLine($"all long holds captured {clock.Elapsed.TotalSeconds:F1} s after the kill");
        Assert.All(receipts, r => Assert.Equal((false, 0.018m), (r.Late, r.Charged)));

        // The short holds expire by themselves: recorded within the bound after their expiry, though half the
        // accounts lost their silo (and their grain timers with it).
        var lastExpiry = expiring.Max(h => h.ExpiresAt);
        while (await Count("SELECT count(*) FROM billing_hold WHERE hold_id = ANY($1) AND status = 'expired'", cluster.ConnectionString, expiring.Select(h => h.HoldId).ToArray()) < expiring.Count
               && DateTimeOffset.UtcNow < lastExpiry + ExpiryAfterFailureBound)
        {
            await Task.Delay(250);
        }

        var recordedBy = DateTimeOffset.UtcNow - lastExpiry;
        output.WriteLine($"all short holds recorded expired {recordedBy.TotalSeconds:F1} s after the last one's expiry");
        Assert.Equal(expiring.Count, await Count("SELECT count(*) FROM billing_hold WHERE hold_id = ANY($1) AND status = 'expired'", cluster.ConnectionString, expiring.Select(h => h.HoldId).ToArray()));
        foreach (var hold in expiring.Concat(capturing))
        {
            var account = (await client.GetGrain<IUserGrain>(hold.AccountId).GetAccount()).Value!;
            var charged = capturing.Contains(hold) ? 0.018m : 0m;
            Assert.Equal((10.0000m - charged, 0m), (account.Balance, account.Held));
        }

        await Ledger.AssertBalancesEqualHistoryAsync(cluster.ConnectionString, users, []);
    }

    private static async Task<BillingResult<T>> Retry<T>(Func<Task<BillingResult<T>>> call, TimeSpan within) where T : class
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception) when (clock.Elapsed < within)
            {
                // The account's silo died: calls fail until the membership declares it dead, then it reactivates here.
                await Task.Delay(500);
            }
        }
    }

    private static async Task<long> Count(string sql, string connectionString, Guid[] ids)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue(ids);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
