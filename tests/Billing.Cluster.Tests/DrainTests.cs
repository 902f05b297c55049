using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;

namespace Billing.Cluster.Tests;

/// <summary>
/// Graceful drain under load: a silo stopped with SIGTERM hands its accounts over without a failed call, and the HTTP
/// gateway stopped with SIGTERM answers every request it accepted before it exits. No 5xx at any point.
/// </summary>
public sealed class DrainTests(ITestOutputHelper output)
{
    private sealed record Answer(Guid UsageId, TimeSpan Started, TimeSpan Ended, int Status, string? Error);

    [Fact]
    public async Task Sigterm_to_a_silo_and_then_to_the_gateway_under_load_gives_no_5xx_and_loses_no_usage()
    {
        await using var cluster = await ProcessCluster.CreateAsync("drain");
        var silos = await cluster.StartActiveSilosAsync(TimeSpan.FromSeconds(30), "drain-a", "drain-b");
        var client = await cluster.ConnectAsync(silos[0].GatewayPort);
        var model = await BillingAccounts.CreateModelAsync(client);
        var accounts = new List<BillingAccounts>();
        for (var i = 0; i < 8; i++) accounts.Add(await BillingAccounts.CreateAsync(client, model));

        var gateway = cluster.StartGateway(environment: new Dictionary<string, string?> { ["Gateway__DrainTimeoutSeconds"] = "20" });
        await ProcessCluster.WaitReadyAsync(gateway.Process, new Uri(gateway.Http, "/health/ready"), TimeSpan.FromSeconds(90));
        var token = await cluster.MintTokenAsync(gateway, "service", Guid.NewGuid());
        using var http = new HttpClient { BaseAddress = gateway.Http, Timeout = TimeSpan.FromSeconds(30) };

        var clock = Stopwatch.StartNew();
        var answers = new ConcurrentQueue<Answer>();
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 8).Select(worker => Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var usage = accounts[(worker + n) % accounts.Count].Usage();
                var started = clock.Elapsed;
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/usage")
                    {
                        Content = JsonContent.Create(new
                        {
                            projectId = usage.ProjectId, userId = usage.UserId, modelId = usage.ModelId,
                            inputTokens = usage.InputTokens, outputTokens = usage.OutputTokens, usageId = usage.UsageId,
                        }),
                    };
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                    using var response = await http.SendAsync(request);
                    var body = response.IsSuccessStatusCode ? null : await response.Content.ReadAsStringAsync();
                    answers.Enqueue(new Answer(usage.UsageId, started, clock.Elapsed, (int)response.StatusCode, body));
                }
                catch (HttpRequestException e)
                {
                    // No answer: the gateway no longer accepts connections (after SIGTERM). Not a 5xx; nothing charged.
                    answers.Enqueue(new Answer(usage.UsageId, started, clock.Elapsed, 0, e.Message));
                    await Task.Delay(50);
                }
            }
        })).ToArray();

        async Task WaitChargedAsync(int count, string when)
        {
            var deadline = clock.Elapsed + TimeSpan.FromSeconds(60);
            while (answers.Count(a => a.Status == 200) < count && clock.Elapsed < deadline) await Task.Delay(50);
            Assert.True(answers.Count(a => a.Status == 200) >= count, $"usage does not flow {when}: {answers.LastOrDefault()}");
        }

        await WaitChargedAsync(40, "before the silo's SIGTERM");
        silos[1].Process.Signal(ChildSignal.Terminate);
        var siloStopped = clock.Elapsed;
        Assert.True(await silos[1].Process.WaitForExitAsync(TimeSpan.FromSeconds(60)), silos[1].Process.Tail());
        output.WriteLine($"silo B stopped in {(clock.Elapsed - siloStopped).TotalSeconds:F1} s (exit {silos[1].Process.ExitCode})");
        var chargedBefore = answers.Count(a => a.Status == 200);
        await WaitChargedAsync(chargedBefore + 80, "after the silo left");

        gateway.Process.Signal(ChildSignal.Terminate);
        var gatewayStopped = clock.Elapsed;
        Assert.True(await gateway.Process.WaitForExitAsync(TimeSpan.FromSeconds(40)), gateway.Process.Tail());
        var gatewayExit = clock.Elapsed - gatewayStopped;
        await stop.CancelAsync();
        await Task.WhenAll(workers);

        var all = answers.ToArray();
        var inFlightAtSigterm = all.Where(a => a.Started < gatewayStopped && a.Ended >= gatewayStopped).ToArray();
        output.WriteLine($"{all.Length} requests: {all.Count(a => a.Status == 200)} × 200, {all.Count(a => a.Status >= 500)} × 5xx, " +
                         $"{all.Count(a => a.Status == 0)} refused connections (after the gateway's SIGTERM)");
        output.WriteLine($"gateway exited {gatewayExit.TotalSeconds:F1} s after SIGTERM with code {gateway.Process.ExitCode}; " +
                         $"{inFlightAtSigterm.Length} requests in flight at SIGTERM: {string.Join(", ", inFlightAtSigterm.GroupBy(a => a.Status).Select(g => $"{g.Count()} × {g.Key}"))}");

        var failures = all.Where(a => a.Status >= 500 || (a.Status != 200 && a.Status != 0)).ToArray();
        Assert.True(failures.Length == 0, $"{failures.Length} failed answers:\n{string.Join('\n', failures.Take(10))}");
        Assert.True(all.Where(a => a.Status == 0).All(a => a.Started >= gatewayStopped || a.Ended >= gatewayStopped),
            "a connection was refused before the gateway was told to stop");
        Assert.Equal(0, gateway.Process.ExitCode);
        Assert.Equal(0, silos[1].Process.ExitCode);

        // Every acknowledged usage charged once; the refused connections charged nothing (their ids are not recorded).
        await Ledger.AssertAcknowledgedUsagesChargedOnceAsync(cluster.ConnectionString, all.Where(a => a.Status == 200).Select(a => a.UsageId).ToArray());
        await Ledger.AssertBalancesEqualHistoryAsync(cluster.ConnectionString, accounts.Select(a => a.UserId).ToArray(), accounts.Select(a => a.ProjectId).ToArray());
    }
}
