using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Billing.Cluster.Tests;

/// <summary>Billing silo processes and the HTTP gateway process on PostgreSQL membership.</summary>
public sealed class MultiSiloTests(ITestOutputHelper output)
{
    /// <summary>
    /// The bound this test holds the cluster to: from the kill -9 of a silo until every account has been
    /// charged again. README.md ("Several silos") documents the membership timeouts behind it.
    /// </summary>
    private static readonly TimeSpan FailoverBound = TimeSpan.FromSeconds(30);

    private sealed record Attempt(Guid UsageId, int Account, TimeSpan Started, TimeSpan Ended, bool Charged, string? Error);

    /// <summary>
    /// Defect 12: without a built Client/ these tests used an Orleans client instead of the HTTP gateway and passed.
    /// Now a missing gateway is a failure, like a missing silo.
    /// </summary>
    [Fact]
    public void ReviewDefect12_ClusterTestsFailWithoutTheBuiltGateway()
    {
        var emptyTree = Directory.CreateTempSubdirectory("billing-no-client-");
        try
        {
            var missing = Assert.Throws<FileNotFoundException>(() => Artifacts.Required(emptyTree.FullName, "Client", "Billing.Client.dll"));
            Assert.Contains("is not built", missing.Message);
        }
        finally
        {
            emptyTree.Delete(recursive: true);
        }

        Assert.True(File.Exists(Artifacts.GatewayDll), "this tree's gateway must be built for the cluster tests");
    }

    [Fact]
    public async Task Two_silos_are_active_serve_usage_through_each_gateway_and_fail_over_after_kill_9()
    {
        await using var cluster = await ProcessCluster.CreateAsync("multi");
        // Membership: both silos Active (status 3) in OrleansMembershipTable.
        var silos = await cluster.StartActiveSilosAsync(TimeSpan.FromSeconds(15), "silo-a", "silo-b");
        var (siloA, siloB) = (silos[0], silos[1]);
        // Started as shipped: silo.env's first GC generation reached each process (the silo logs what it got).
        Assert.All(silos, silo => Assert.Contains("(DOTNET_GCgen0size 0x400000)", silo.Process.Output));

        // A usage succeeds through each silo's gateway port.
        var throughA = await cluster.ConnectAsync(siloA.GatewayPort);
        var throughB = await cluster.ConnectAsync(siloB.GatewayPort);
        var model = await BillingAccounts.CreateModelAsync(throughA);
        var accounts = new List<BillingAccounts>();
        for (var i = 0; i < 8; i++) accounts.Add(await BillingAccounts.CreateAsync(i % 2 == 0 ? throughA : throughB, model));
        var acknowledged = new ConcurrentBag<Guid>();
        foreach (var (client, name) in new[] { (throughA, "A"), (throughB, "B") })
        {
            var usage = accounts[0].Usage();
            var result = await client.GetGrain<IUsageGrain>(0).RecordAiUsage(usage);
            Assert.True(result.IsOk, $"usage through silo {name}'s gateway: {result.Problem?.Detail}");
            Assert.Equal(0.012207m, result.Value!.Cost);
            acknowledged.Add(usage.UsageId);
        }

        // The load: the HTTP gateway process (required: a tree without a built Client fails here, it does not
        // quietly test an Orleans client instead).
        var gateway = cluster.StartGateway();
        await ProcessCluster.WaitReadyAsync(gateway.Process, new Uri(gateway.Http, "/health/ready"), TimeSpan.FromSeconds(90));
        IUsageDriver driver = new HttpUsageDriver(gateway.Http, await cluster.MintTokenAsync(gateway, "service", Guid.NewGuid()));

        output.WriteLine($"load through: {driver.Name}");

        // Usages flow open-loop over 8 accounts (a new call every ~5 ms, at most 32 in flight, so that calls stuck
        // on the dead silo do not hold the others back); silo B is killed with SIGKILL once 40 are charged.
        var clock = Stopwatch.StartNew();
        var attempts = new ConcurrentQueue<Attempt>();
        using var stop = new CancellationTokenSource();
        using var inFlight = new SemaphoreSlim(32);
        var calls = new ConcurrentQueue<Task>();
        var producer = Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                await inFlight.WaitAsync();
                var account = n % accounts.Count;
                var usage = accounts[account].Usage();
                var started = clock.Elapsed;
                calls.Enqueue(Task.Run(async () =>
                {
                    try
                    {
                        var (charged, error) = await driver.RecordAsync(usage);
                        attempts.Enqueue(new Attempt(usage.UsageId, account, started, clock.Elapsed, charged, error));
                    }
                    finally
                    {
                        inFlight.Release();
                    }
                }));
                await Task.Delay(5);
            }
        });

        var deadline = clock.Elapsed + TimeSpan.FromSeconds(60);
        while (attempts.Count(a => a.Charged) < 40 && clock.Elapsed < deadline) await Task.Delay(50);
        Assert.True(attempts.Count(a => a.Charged) >= 40, $"usage does not flow before the kill: {attempts.LastOrDefault()?.Error}");

        siloB.Process.Kill(entireProcessTree: false);
        var killedAt = clock.Elapsed;
        output.WriteLine($"killed silo B (pid {siloB.Process.Pid}) at {killedAt.TotalSeconds:F1} s");

        // Watch the membership table declare it Dead (status 6).
        var declaredDead = Task.Run(async () =>
        {
            while (clock.Elapsed < killedAt + TimeSpan.FromSeconds(60))
            {
                if ((await cluster.MembershipAsync()).GetValueOrDefault(siloB.SiloPort) == 6) return clock.Elapsed - killedAt;
                await Task.Delay(100);
            }

            return (TimeSpan?)null;
        });

        // Until every account has been charged again by a call started after the kill (or the bound passes twice).
        TimeSpan? recovered = null;
        while (clock.Elapsed < killedAt + 2 * FailoverBound)
        {
            var after = attempts.Where(a => a.Charged && a.Started >= killedAt).ToArray();
            if (Enumerable.Range(0, accounts.Count).All(i => after.Any(a => a.Account == i)))
            {
                recovered = Enumerable.Range(0, accounts.Count).Max(i => after.Where(a => a.Account == i).Min(a => a.Ended)) - killedAt;
                break;
            }

            await Task.Delay(100);
        }

        await Task.Delay(TimeSpan.FromSeconds(2)); // keep the load on for a while after the recovery
        await stop.CancelAsync();
        await producer;
        await Task.WhenAll(calls);
        var deadAfter = await declaredDead;

        var all = attempts.ToArray();
        var failed = all.Where(a => !a.Charged).ToArray();
        output.WriteLine($"{all.Length} attempts, {all.Length - failed.Length} charged, {failed.Length} failed");
        output.WriteLine($"silo B declared Dead in the membership table {deadAfter?.TotalSeconds:F1} s after the kill");
        output.WriteLine($"every account charged again {recovered?.TotalSeconds:F1} s after the kill (bound {FailoverBound.TotalSeconds} s)");
        if (failed.Length > 0)
        {
            output.WriteLine($"failed calls took {failed.Min(a => a.Ended - a.Started).TotalSeconds:F1}–{failed.Max(a => a.Ended - a.Started).TotalSeconds:F1} s; " +
                             $"the last one started {(failed.Max(a => a.Started) - killedAt).TotalSeconds:F1} s after the kill");
        }

        foreach (var error in failed.GroupBy(a => Regex.Replace(a.Error ?? "", "\"traceId\":\"[^\"]*\"", "").Split('\n')[0]).Take(5))
        {
            output.WriteLine($"  {error.Count()}× {error.Key}");
        }

        Assert.NotNull(deadAfter);
        Assert.True(recovered is not null && recovered <= FailoverBound,
            $"usage did not succeed again on every account within {FailoverBound} of the kill (recovered: {recovered}).\n{siloA.Process.Tail()}\n{gateway.Process.Tail()}");

        // A failed call may or may not have been charged; retried with the same usage id, it is charged exactly once.
        foreach (var attempt in failed)
        {
            var (charged, error) = await driver.RecordAsync(accounts[attempt.Account].Usage(attempt.UsageId));
            Assert.True(charged, $"retry of {attempt.UsageId} after the fail-over: {error}");
        }

        foreach (var attempt in all) acknowledged.Add(attempt.UsageId);

        // Afterwards: every touched account's balance equals the sum of its history, and every acknowledged usage
        // is in the history, charged exactly once.
        await Ledger.AssertBalancesEqualHistoryAsync(cluster.ConnectionString,
            accounts.Select(a => a.UserId).ToArray(), accounts.Select(a => a.ProjectId).ToArray());
        await Ledger.AssertAcknowledgedUsagesChargedOnceAsync(cluster.ConnectionString, acknowledged.ToArray());
    }
}
