using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Npgsql;
using Orleans.Runtime;

namespace Billing.Cluster.Tests;

/// <summary>
/// Defect 14: a silo that stops answering (SIGSTOP: a GC pause, a frozen VM) must cost the other accounts nothing
/// and its own accounts a few seconds; and prices, now cached on every silo, must stay exact across silos.
/// </summary>
public sealed class SiloFreezeTests(ITestOutputHelper output)
{
    /// <summary>How long the silo stays frozen (the issue's reproduction: 15 s).</summary>
    private static readonly TimeSpan Freeze = TimeSpan.FromSeconds(15);

    // The bounds catch the stall this test was written for (before the fix, every account stopped for the whole
    // freeze) with room for a busy 2-core machine; they are not the speed goal. The figures themselves are printed
    // and go in the README (issue 9 asks: healthy accounts never pause, every account usable again within 8 s).

    /// <summary>
    /// Longest pause in successful answers allowed for an account whose grains are on a healthy silo. When the frozen
    /// silo is declared dead, Orleans deactivates healthy activations whose directory entry it held, and they reload.
    /// </summary>
    private static readonly TimeSpan HealthyGapBound = TimeSpan.FromSeconds(6);

    /// <summary>From the freeze until every account, the frozen silo's included, is charged again.</summary>
    private static readonly TimeSpan RecoveryBound = TimeSpan.FromSeconds(12);

    private sealed record Attempt(Guid UsageId, int Account, TimeSpan Started, TimeSpan Ended, bool Charged, string? Error);

    [Fact]
    public async Task ReviewDefect14_FrozenSiloDoesNotStallAccountsOnHealthySilos()
    {
        await using var cluster = await ProcessCluster.CreateAsync("freeze");
        var silos = await cluster.StartActiveSilosAsync(TimeSpan.FromSeconds(20), "silo-a", "silo-b", "silo-c");

        var client = await cluster.ConnectThroughMembershipAsync();
        var model = await BillingAccounts.CreateModelAsync(client);

        // Freeze the silo that holds the model's pricing grain (the issue's case: before, every usage needed it).
        var management = client.GetGrain<IManagementGrain>(0);
        var pricingSilo = await management.GetActivationAddress(client.GetGrain<IModelPricingGrain>(model));
        var frozen = silos.FirstOrDefault(s => pricingSilo is not null && s.SiloPort == pricingSilo.Endpoint.Port) ?? silos[^1];

        // Placement prefers the silo a call comes in through: accounts created through one client's gateway all landed
        // on that silo, the pricing grain's too (seen: 18 of 18, and 60 of 60, on the silo to freeze, which left the
        // healthy accounts' check nothing to check). Create them through each silo's gateway in turn, and more until
        // some live off the silo to freeze.
        var throughEachSilo = new List<IClusterClient>();
        foreach (var silo in silos) throughEachSilo.Add(await cluster.ConnectAsync(silo.GatewayPort));
        var accounts = new List<BillingAccounts>();
        async Task<int> AccountsOffTheFrozenSiloAsync() => (await Task.WhenAll(accounts.Select(a =>
            management.GetActivationAddress(client.GetGrain<IProjectGrain>(a.ProjectId)).AsTask()))).Count(home => home is not null && home.Endpoint.Port != frozen.SiloPort);
        while (accounts.Count < 18 || (accounts.Count < 60 && await AccountsOffTheFrozenSiloAsync() < 3))
            accounts.Add(await BillingAccounts.CreateAsync(throughEachSilo[accounts.Count % throughEachSilo.Count], model));

        var gateway = cluster.StartGateway();
        await ProcessCluster.WaitReadyAsync(gateway.Process, new Uri(gateway.Http, "/health/ready"), TimeSpan.FromSeconds(90));
        var driver = new HttpUsageDriver(gateway.Http, await cluster.MintTokenAsync(gateway, "service", Guid.NewGuid()));

        // Usage flows open-loop: every account gets a new call every 250 ms whatever its earlier calls are doing.
        var clock = Stopwatch.StartNew();
        var attempts = new ConcurrentQueue<Attempt>();
        using var stop = new CancellationTokenSource();
        var calls = new ConcurrentQueue<Task>();
        var producers = accounts.Select((account, index) => Task.Run(async () =>
        {
            await Task.Delay(index * 250 / accounts.Count);
            while (!stop.IsCancellationRequested)
            {
                var usage = account.Usage();
                var started = clock.Elapsed;
                calls.Enqueue(Task.Run(async () =>
                {
                    var (charged, error) = await driver.RecordAsync(usage);
                    attempts.Enqueue(new Attempt(usage.UsageId, index, started, clock.Elapsed, charged, error));
                }));
                await Task.Delay(250);
            }
        })).ToArray();

        var deadline = clock.Elapsed + TimeSpan.FromSeconds(60);
        while (!Enumerable.Range(0, accounts.Count).All(i => attempts.Any(a => a.Account == i && a.Charged)) && clock.Elapsed < deadline)
            await Task.Delay(100);
        await Task.Delay(TimeSpan.FromSeconds(3)); // warm: every account charged, then steady load

        // Where each account's project grain lives (the project pays these usages), just before the freeze.
        var homes = await Task.WhenAll(accounts.Select(a => management.GetActivationAddress(client.GetGrain<IProjectGrain>(a.ProjectId)).AsTask()));
        var onFrozen = Enumerable.Range(0, accounts.Count).Where(i => homes[i]?.Endpoint.Port == frozen.SiloPort).ToHashSet();
        var healthy = Enumerable.Range(0, accounts.Count).Where(i => !onFrozen.Contains(i) && homes[i] is not null).ToArray();

        frozen.Process.Signal(ChildSignal.Stop);
        var frozenAt = clock.Elapsed;
        output.WriteLine($"SIGSTOP {frozen.Name} (pid {frozen.Process.Pid}, pricing grain's silo: {pricingSilo}) at {frozenAt.TotalSeconds:F1} s; " +
                         $"{onFrozen.Count} accounts on it, {healthy.Length} on healthy silos");
        var declaredDead = Task.Run(async () =>
        {
            while (clock.Elapsed < frozenAt + Freeze)
            {
                if ((await cluster.MembershipAsync()).GetValueOrDefault(frozen.SiloPort) == 6) return clock.Elapsed - frozenAt;
                await Task.Delay(100);
            }

            return (TimeSpan?)null;
        });

        try
        {
            await Task.Delay(Freeze);
        }
        finally
        {
            frozen.Process.Signal(ChildSignal.Continue);
        }

        var resumedAt = clock.Elapsed;
        await Task.Delay(TimeSpan.FromSeconds(3)); // load goes on after the silo wakes (it finds itself dead and stops)
        await stop.CancelAsync();
        await Task.WhenAll(producers);
        await Task.WhenAll(calls);
        var deadAfter = await declaredDead;

        var all = attempts.ToArray();
        // The longest stretch without a successful answer, per account, over the freeze.
        TimeSpan LongestGap(int account)
        {
            var ends = all.Where(a => a.Account == account && a.Charged && a.Ended >= frozenAt && a.Ended <= resumedAt)
                .Select(a => a.Ended).Order().Prepend(frozenAt).Append(resumedAt).ToArray();
            return ends.Zip(ends.Skip(1), (x, y) => y - x).Max();
        }

        TimeSpan? Recovery(int account) =>
            all.Where(a => a.Account == account && a.Charged && a.Started >= frozenAt).Select(a => (TimeSpan?)(a.Ended - frozenAt)).Min();

        var healthyGaps = healthy.Select(LongestGap).ToArray();
        var recoveries = Enumerable.Range(0, accounts.Count).Select(Recovery).ToArray();
        var during = all.Where(a => a.Started >= frozenAt && a.Started < resumedAt).ToArray();
        var failed = all.Where(a => !a.Charged).ToArray();
        var worstRecovery = recoveries.All(r => r is not null) ? recoveries.Max() : null;
        var frozenRecovery = onFrozen.Count > 0 && onFrozen.All(i => recoveries[i] is not null) ? onFrozen.Max(i => recoveries[i]) : null;

        output.WriteLine($"{frozen.Name} declared Dead in the membership table {deadAfter?.TotalSeconds:F1} s after SIGSTOP");
        output.WriteLine($"accounts on healthy silos: longest pause in successful answers {healthyGaps.DefaultIfEmpty().Max().TotalSeconds:F2} s " +
                         $"(bound {HealthyGapBound.TotalSeconds} s; per account {string.Join(", ", healthyGaps.Select(g => g.TotalSeconds.ToString("F2")))})");
        output.WriteLine($"accounts on the frozen silo: charged again {frozenRecovery?.TotalSeconds:F1} s after SIGSTOP; " +
                         $"every account {worstRecovery?.TotalSeconds:F1} s (bound {RecoveryBound.TotalSeconds} s)");
        output.WriteLine($"during the freeze: {during.Length} calls, {during.Count(a => a.Charged)} charged; overall {all.Length} calls, {failed.Length} failed");
        foreach (var error in failed.GroupBy(a => Regex.Replace(a.Error ?? "", "\"traceId\":\"[^\"]*\"", "").Split('\n')[0]).Take(5))
            output.WriteLine($"  {error.Count()}× {error.Key}");

        Assert.NotEmpty(healthy);
        Assert.True(healthyGaps.Max() <= HealthyGapBound,
            $"an account on a healthy silo paused {healthyGaps.Max().TotalSeconds:F2} s (bound {HealthyGapBound.TotalSeconds} s).\n{gateway.Process.Tail()}");
        Assert.True(worstRecovery is not null && worstRecovery <= RecoveryBound,
            $"not every account was charged again within {RecoveryBound.TotalSeconds} s of the freeze (worst: {worstRecovery}).\n{gateway.Process.Tail()}");

        // A failed call may or may not have been charged; retried with the same usage id, it is charged exactly once.
        var acknowledged = new List<Guid>();
        foreach (var attempt in failed)
        {
            var (charged, error) = await driver.RecordAsync(accounts[attempt.Account].Usage(attempt.UsageId));
            Assert.True(charged, $"retry of {attempt.UsageId} after the freeze: {error}");
        }

        acknowledged.AddRange(all.Select(a => a.UsageId));
        await Ledger.AssertBalancesEqualHistoryAsync(cluster.ConnectionString,
            accounts.Select(a => a.UserId).ToArray(), accounts.Select(a => a.ProjectId).ToArray());
        await Ledger.AssertAcknowledgedUsagesChargedOnceAsync(cluster.ConnectionString, acknowledged.ToArray());
    }

    /// <summary>
    /// A usage sent through the gateway port of a silo that then stops answering gets no answer from it at all: Orleans
    /// clients do not fail calls to a silo declared dead. Before, the HTTP gateway answered those 503 when its cluster-call
    /// timeout expired (the drain test's intermittent failure: calls inside a stopping silo). Now it calls once more,
    /// by then without the frozen silo, and every usage is answered 200 and charged once.
    /// </summary>
    [Fact]
    public async Task A_usage_unanswered_by_a_frozen_silo_is_called_again_and_answered_not_503()
    {
        await using var cluster = await ProcessCluster.CreateAsync("unanswered");
        var (silos, accounts, gateway, token) = await TwoSilosAndTheGatewayAsync(cluster);
        var driver = new HttpUsageDriver(gateway.Http, token);
        // Warm: the gateway has called through both silos' gateway ports (32 usage-grain ids spread over them).
        foreach (var usage in Enumerable.Range(0, 32).Select(i => accounts[i % accounts.Count].Usage()))
        {
            var (charged, error) = await driver.RecordAsync(usage);
            Assert.True(charged, error);
        }

        var frozen = silos[1];
        frozen.Process.Signal(ChildSignal.Stop);
        var clock = Stopwatch.StartNew();
        var calls = Enumerable.Range(0, 32).Select(i => accounts[i % accounts.Count].Usage()).Select(async usage =>
        {
            var (charged, error) = await driver.RecordAsync(usage);
            return (usage.UsageId, charged, error, took: clock.Elapsed);
        }).ToArray();
        var answers = await Task.WhenAll(calls);
        frozen.Process.Signal(ChildSignal.Continue); // it finds itself declared dead and stops

        var unanswered = answers.Where(a => a.took >= TimeSpan.FromSeconds(10)).ToArray();
        output.WriteLine($"{answers.Length} usages during the freeze: {answers.Count(a => a.charged)} charged; " +
                         $"{unanswered.Length} waited out the 10 s cluster-call timeout (slowest {answers.Max(a => a.took).TotalSeconds:F1} s)");
        Assert.True(answers.All(a => a.charged), string.Join('\n', answers.Where(a => !a.charged).Select(a => $"{a.UsageId}: {a.error}")));
        Assert.True(unanswered.Length > 0, "no usage went through the frozen silo's gateway: the test did not exercise the case");

        await Ledger.AssertAcknowledgedUsagesChargedOnceAsync(cluster.ConnectionString, answers.Select(a => a.UsageId).ToArray());
        await Ledger.AssertBalancesEqualHistoryAsync(cluster.ConnectionString,
            accounts.Select(a => a.UserId).ToArray(), accounts.Select(a => a.ProjectId).ToArray());
    }

    /// <summary>
    /// A hold placement through a frozen silo is sent again by the gateway after the cluster-call timeout, as a usage
    /// is: the first stored outcome of a hold id (the hold, or a refusal, which claims the id too) answers every copy,
    /// so the copy still inside the frozen silo cannot place a hold the resend was refused, nor a second one. Before
    /// refusals claimed their hold id, these placements answered 503 (a resend could answer 402 while the first copy
    /// still placed the hold: the bank test's H3 failure). Every placement is answered 201 and placed once.
    /// </summary>
    [Fact]
    public async Task A_hold_placement_unanswered_by_a_frozen_silo_is_called_again_and_placed_once_not_503()
    {
        await using var cluster = await ProcessCluster.CreateAsync("unanswered-holds");
        var (silos, accounts, gateway, token) = await TwoSilosAndTheGatewayAsync(cluster);
        using var http = new HttpClient { BaseAddress = gateway.Http, Timeout = TimeSpan.FromSeconds(60) };
        async Task<(int Status, string Body)> PlaceAsync(Guid holdId, BillingAccounts account)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/holds")
            {
                Content = JsonContent.Create(new
                {
                    holdId, projectId = account.ProjectId, userId = account.UserId, modelId = account.ModelId, inputTokens = 100, maxOutputTokens = 100,
                }),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await http.SendAsync(request);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        // Warm: placements through both silos' gateway ports.
        foreach (var i in Enumerable.Range(0, 16)) Assert.Equal(201, (await PlaceAsync(Guid.NewGuid(), accounts[i % accounts.Count])).Status);

        var placements = Enumerable.Range(0, 32).Select(i => (HoldId: Guid.NewGuid(), Account: accounts[i % accounts.Count])).ToArray();
        var unanswered = await UnansweredDuringAFreezeAsync(silos[1], placements, p => PlaceAsync(p.HoldId, p.Account), expected: 201, "placements");

        // The caller's own retry with the same id answers the hold placed (200), never a second one.
        foreach (var (a, _) in unanswered)
        {
            var (status, body) = await PlaceAsync(a.HoldId, a.Account);
            Assert.True(status == 200, $"retry of {a.HoldId}: {status} {body}");
        }

        await using var connection = new NpgsqlConnection(cluster.ConnectionString);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM billing_hold WHERE hold_id = ANY($1) AND status = 'active'", connection)
        {
            Parameters = { new NpgsqlParameter { Value = placements.Select(p => p.HoldId).ToArray() } },
        };
        Assert.Equal((long)placements.Length, (long)(await count.ExecuteScalarAsync())!);
        await Ledger.AssertBalancesEqualHistoryAsync(cluster.ConnectionString,
            accounts.Select(a => a.UserId).ToArray(), accounts.Select(a => a.ProjectId).ToArray());
    }

    /// <summary>
    /// Captures go through a frozen silo's gateway port the same way: the gateway sends an unanswered capture again, which
    /// is safe because a capture ends its hold once and a refused late capture claims its usage id, so every copy gets
    /// the first stored answer. Every capture is answered 200 and charged once; the caller's retry gets the same receipt.
    /// </summary>
    [Fact]
    public async Task A_capture_unanswered_by_a_frozen_silo_is_called_again_and_charged_once_not_503()
    {
        await using var cluster = await ProcessCluster.CreateAsync("unanswered-captures");
        var (silos, accounts, gateway, token) = await TwoSilosAndTheGatewayAsync(cluster);
        using var http = new HttpClient { BaseAddress = gateway.Http, Timeout = TimeSpan.FromSeconds(60) };
        async Task<(int Status, string Body)> PostAsync(string path, object body)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await http.SendAsync(request);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        // Holds placed before the freeze, through both silos' gateway ports.
        var holds = new List<Guid>();
        foreach (var i in Enumerable.Range(0, 32))
        {
            var account = accounts[i % accounts.Count];
            var holdId = Guid.NewGuid();
            var (status, body) = await PostAsync("/v1/holds", new
            {
                holdId, projectId = account.ProjectId, userId = account.UserId, modelId = account.ModelId, inputTokens = 100, maxOutputTokens = 100,
            });
            Assert.True(status == 201, $"{holdId}: {status} {body}");
            holds.Add(holdId);
        }

        Task<(int Status, string Body)> CaptureAsync(Guid holdId) => PostAsync($"/v1/holds/{holdId}/capture", new { inputTokens = 100, outputTokens = 50 });
        var unanswered = await UnansweredDuringAFreezeAsync(silos[1], holds, CaptureAsync, expected: 200, "captures");

        // The caller's own retry answers the same receipt, never a second charge.
        foreach (var (holdId, first) in unanswered)
        {
            var (status, body) = await CaptureAsync(holdId);
            Assert.True(status == 200 && body == first, $"retry of {holdId}: {status} {body}, first {first}");
        }

        await using var connection = new NpgsqlConnection(cluster.ConnectionString);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("""
            SELECT (SELECT count(*) FROM billing_hold WHERE hold_id = ANY($1) AND status = 'captured'),
                   (SELECT count(*) FROM project_billing_history WHERE hold_id = ANY($1)) + (SELECT count(*) FROM user_billing_history WHERE hold_id = ANY($1))
            """, connection)
        {
            Parameters = { new NpgsqlParameter { Value = holds.ToArray() } },
        };
        await using (var reader = await count.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal(((long)holds.Count, (long)holds.Count), (reader.GetInt64(0), reader.GetInt64(1)));
        }

        await Ledger.AssertBalancesEqualHistoryAsync(cluster.ConnectionString,
            accounts.Select(a => a.UserId).ToArray(), accounts.Select(a => a.ProjectId).ToArray());
    }

    /// <summary>
    /// Sends a call for every item at once while <paramref name="frozen"/> is stopped (SIGSTOP), then lets it go on (it
    /// finds itself declared dead and stops). Every call must answer <paramref name="expected"/>, and some must have
    /// waited out the 10 s cluster-call timeout (gone through the frozen silo's gateway port): those are returned, with
    /// their answers' bodies, for the caller's own retry.
    /// </summary>
    private async Task<(T Item, string Body)[]> UnansweredDuringAFreezeAsync<T>(
        SiloProcess frozen, IReadOnlyList<T> items, Func<T, Task<(int Status, string Body)>> call, int expected, string calls)
    {
        frozen.Process.Signal(ChildSignal.Stop);
        var clock = Stopwatch.StartNew();
        var answers = await Task.WhenAll(items.Select(async item =>
        {
            var (status, body) = await call(item);
            return (item, status, body, took: clock.Elapsed);
        }));
        frozen.Process.Signal(ChildSignal.Continue);

        var unanswered = answers.Where(a => a.took >= TimeSpan.FromSeconds(10)).ToArray();
        output.WriteLine($"{answers.Length} {calls} during the freeze: {string.Join(", ", answers.GroupBy(a => a.status).Select(g => $"{g.Count()} x {g.Key}"))}; " +
                         $"{unanswered.Length} waited out the 10 s cluster-call timeout (slowest {answers.Max(a => a.took).TotalSeconds:F1} s)");
        Assert.All(answers, a => Assert.True(a.status == expected, $"{a.item}: {a.status} {a.body}"));
        Assert.True(unanswered.Length > 0, $"none of the {calls} went through the frozen silo's gateway: the test did not exercise the case");
        return unanswered.Select(a => (a.item, a.body)).ToArray();
    }

    /// <summary>Two active silos, four accounts on one model, the HTTP gateway ready, and a service token for it.</summary>
    private static async Task<(SiloProcess[] Silos, List<BillingAccounts> Accounts, GatewayProcess Gateway, string Token)> TwoSilosAndTheGatewayAsync(ProcessCluster cluster)
    {
        var silos = await cluster.StartActiveSilosAsync(TimeSpan.FromSeconds(20), "silo-a", "silo-b");
        var client = await cluster.ConnectAsync(silos[0].GatewayPort);
        var model = await BillingAccounts.CreateModelAsync(client);
        var accounts = new List<BillingAccounts>();
        for (var i = 0; i < 4; i++) accounts.Add(await BillingAccounts.CreateAsync(client, model));

        var gateway = cluster.StartGateway();
        await ProcessCluster.WaitReadyAsync(gateway.Process, new Uri(gateway.Http, "/health/ready"), TimeSpan.FromSeconds(90));
        return (silos, accounts, gateway, await cluster.MintTokenAsync(gateway, "service", Guid.NewGuid()));
    }

    /// <summary>
    /// Each silo prices usage from its own price book; a new price answered by one silo's pricing grain is used by
    /// the very next usage through any silo, whichever silo holds the pricing grain.
    /// </summary>
    [Fact]
    public async Task ReviewDefect14_PriceSetThroughOneSiloPricesTheNextUsageThroughAnother()
    {
        await using var cluster = await ProcessCluster.CreateAsync("prices");
        var silos = await cluster.StartActiveSilosAsync(TimeSpan.FromSeconds(15), "silo-a", "silo-b");
        var (siloA, siloB) = (silos[0], silos[1]);

        // Usage grains are stateless workers: a call through a silo's gateway is priced on that silo.
        var throughA = await cluster.ConnectAsync(siloA.GatewayPort);
        var throughB = await cluster.ConnectAsync(siloB.GatewayPort);
        var model = await BillingAccounts.CreateModelAsync(throughA);
        var account = await BillingAccounts.CreateAsync(throughA, model);
        var pricingSilo = await throughA.GetGrain<IManagementGrain>(0).GetActivationAddress(throughA.GetGrain<IModelPricingGrain>(model));
        output.WriteLine($"pricing grain on {pricingSilo}; silo A {siloA.SiloPort}, silo B {siloB.SiloPort}");

        // Both books loaded with the first price.
        foreach (var c in new[] { throughA, throughB })
        {
            var first = await c.GetGrain<IUsageGrain>(0).RecordAiUsage(account.Usage());
            Assert.True(first.IsOk, first.Problem?.Detail);
            Assert.Equal(0.012207m, first.Value!.Cost);
        }

        for (var round = 1; round <= 4; round++)
        {
            var writer = round % 2 == 0 ? throughA : throughB;
            decimal input = 3 + round, outputPrice = 15 + round;
            var clock = Stopwatch.StartNew();
            var put = await writer.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput(input, outputPrice, "USD", null));
            Assert.True(put.IsOk, put.Problem?.Detail);
            var putTook = clock.Elapsed;
            var expected = (1234 * input + 567 * outputPrice) / 1_000_000m;
            foreach (var (c, name) in new[] { (throughA, "A"), (throughB, "B") })
            {
                var usage = await c.GetGrain<IUsageGrain>(0).RecordAiUsage(account.Usage());
                Assert.True(usage.IsOk, usage.Problem?.Detail);
                Assert.True(expected == usage.Value!.Cost,
                    $"round {round}: usage through silo {name} right after the price was answered cost {usage.Value.Cost}, expected {expected}");
            }

            output.WriteLine($"round {round}: price {input}/{outputPrice} answered in {putTook.TotalMilliseconds:F0} ms; the next usage through A and B priced with it");
        }
    }
}
