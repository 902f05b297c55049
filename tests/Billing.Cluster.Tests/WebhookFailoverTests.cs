using System.Collections.Concurrent;
using Npgsql;

namespace Billing.Cluster.Tests;

/// <summary>E2 across a crash: every event of a workload reaches the receiver while a silo is killed with SIGKILL.</summary>
public sealed class WebhookFailoverTests(ITestOutputHelper output)
{
    private static readonly Dictionary<string, string?> FastWebhooks = new()
    {
        ["Billing__Webhooks__RetrySchedule__0"] = "00:00:01",
        ["Billing__Webhooks__RetrySchedule__1"] = "00:00:01",
        ["Billing__Webhooks__RetrySchedule__2"] = "00:00:02",
        ["Billing__Webhooks__RetrySchedule__3"] = "00:00:02",
        ["Billing__Webhooks__RetrySchedule__4"] = "00:00:05",
        ["Billing__Webhooks__PollInterval"] = "00:00:00.200",
        ["Billing__Webhooks__Timeout"] = "00:00:03",
        ["Billing__Webhooks__Lease"] = "00:00:04",
        ["Billing__Webhooks__BatchSize"] = "8",
    };

    [Fact]
    public async Task Every_event_of_a_workload_arrives_deduplicated_by_webhook_id_across_a_silo_kill_9()
    {
        // Slow answers keep deliveries in flight, so the killed silo dies holding claims that others must take over.
        await using var receiver = await WebhookReceiver.StartAsync(delay: TimeSpan.FromMilliseconds(150));
        await using var cluster = await ProcessCluster.CreateAsync("hooks");
        var siloA = cluster.StartSilo("silo-a", FastWebhooks);
        var siloB = cluster.StartSilo("silo-b", FastWebhooks);
        await Task.WhenAll(ProcessCluster.WaitReadyAsync(siloA), ProcessCluster.WaitReadyAsync(siloB));
        await cluster.WaitActiveAsync(TimeSpan.FromSeconds(30), siloA.SiloPort, siloB.SiloPort);
        var client = await cluster.ConnectThroughMembershipAsync();

        var path = $"/ok/{Guid.NewGuid():N}";
        var endpoint = await client.GetGrain<IWebhooksGrain>(0).Create(new WebhookEndpointInput(receiver.Url(path), BillingEventTypes.All.ToArray()));
        Assert.True(endpoint.IsOk, endpoint.Problem?.Detail);
        receiver.Trust(path, endpoint.Value!.Secret!);

        var model = Guid.NewGuid();
        Assert.True((await client.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput(1_000_000m, 0.0001m, "USD", DateTimeOffset.UtcNow.AddMinutes(-1)))).IsOk);
        var users = Enumerable.Range(0, 12).Select(_ => Guid.NewGuid()).ToArray();
        foreach (var user in users)
        {
            Assert.True((await client.GetGrain<IUserGrain>(user).Initialize()).IsOk);
            Assert.True((await client.GetGrain<IUserGrain>(user).AsReference<IBalanceAlertsGrain>().SetAlerts([9m, 7m, 5m, 3m, 1m])).IsOk);
        }

        // Per user: spend 1 at a time down to 0 and beyond (lows, then refusals: depleted + created), top up (resolved,
        // recovered), spend again (lows). Every call is retried with its own id until it has an answer.
        var done = new ConcurrentBag<int>();
        var workload = users.Select((user, index) => Task.Run(async () =>
        {
            for (var round = 0; round < 2; round++)
            {
                for (var i = 0; i < 12; i++)
                {
                    var usage = new PersonalUsage(Guid.NewGuid(), user, model, 1, 0);
                    await Retry(() => client.GetGrain<IUsageGrain>(0).RecordPersonalUsage(usage));
                    done.Add(index);
                }

                var credit = new AccountCredit(10m, HistoryReasons.TopUp, Guid.NewGuid());
                await Retry(() => client.GetGrain<IUserGrain>(user).Credit(credit));
            }
        })).ToArray();

        while (done.Count < users.Length * 8) await Task.Delay(20);
        siloB.Process.Kill(entireProcessTree: false);
        output.WriteLine($"silo-b killed after {done.Count} usages");
        await Task.WhenAll(workload);

        var expected = await EventIdsAsync(cluster.ConnectionString);
        output.WriteLine($"{expected.Count} events in the outbox");
        var deadline = DateTime.UtcNow.AddSeconds(90);
        HashSet<string> received;
        while (true)
        {
            received = receiver.To(path).Where(r => r.Answered == 204).Select(r => r.Id).ToHashSet();
            if (expected.All(received.Contains) || DateTime.UtcNow > deadline) break;
            await Task.Delay(250);
        }

        var all = receiver.To(path).ToArray();
        output.WriteLine($"{all.Length} requests, {received.Count} distinct webhook-ids, {all.Length - received.Count} duplicates");
        var missing = expected.Where(id => !received.Contains(id)).ToArray();
        var unknown = received.Where(id => !expected.Contains(id)).ToArray();
        Assert.True(missing.Length == 0, $"{missing.Length} events never arrived: {string.Join(", ", missing.Take(10))}");
        Assert.True(unknown.Length == 0, $"{unknown.Length} deliveries of no stored event: {string.Join(", ", unknown.Take(10))}");
        Assert.All(all, r => Assert.True(r.SignatureValid, $"bad signature on {r.Id}"));
        Assert.Contains(all, r => r.Body.Contains("\"balance.recovered\""));
        Assert.Contains(all, r => r.Body.Contains("\"billing_error.resolved\""));
        await LedgerInvariants.AssertHoldAsync(cluster.ConnectionString); // I1–I5 and E1
    }

    private static async Task<T> Retry<T>(Func<Task<T>> call)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }

    private static async Task<HashSet<string>> EventIdsAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT id::text FROM billing_event", connection);
        var ids = new HashSet<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) ids.Add(reader.GetString(0));
        return ids;
    }
}
