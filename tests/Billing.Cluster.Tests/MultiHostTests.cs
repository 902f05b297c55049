using System.Net;

namespace Billing.Cluster.Tests;

/// <summary>
/// Several hosts, as far as one machine can show it: each silo listens on every address and advertises its own
/// (Orleans:AdvertisedIPAddress), 127.0.0.1 and 127.0.0.2, and the HTTP gateway reaches both through the membership table.
/// </summary>
public sealed class MultiHostTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Two_silos_advertising_different_addresses_form_one_cluster_and_the_gateway_reaches_both()
    {
        await using var cluster = await ProcessCluster.CreateAsync("hosts");
        var siloA = cluster.StartSilo("host-a", advertisedAddress: "127.0.0.1");
        var siloB = cluster.StartSilo("host-b", advertisedAddress: "127.0.0.2");
        await Task.WhenAll(ProcessCluster.WaitReadyAsync(siloA), ProcessCluster.WaitReadyAsync(siloB));
        await cluster.WaitActiveAsync(TimeSpan.FromSeconds(30), siloA.SiloPort, siloB.SiloPort);

        // Each silo is published in the membership table under its own advertised address.
        var addresses = await cluster.AdvertisedAddressesAsync();
        Assert.Equal("127.0.0.1", addresses[siloA.SiloPort]);
        Assert.Equal("127.0.0.2", addresses[siloB.SiloPort]);

        // Each silo's gateway port answers on its advertised address.
        var throughB = await cluster.ConnectAsync(new IPEndPoint(IPAddress.Parse("127.0.0.2"), siloB.GatewayPort));
        var throughA = await cluster.ConnectAsync(new IPEndPoint(IPAddress.Loopback, siloA.GatewayPort));
        var model = await BillingAccounts.CreateModelAsync(throughB);
        var accounts = new List<BillingAccounts>();
        for (var i = 0; i < 6; i++) accounts.Add(await BillingAccounts.CreateAsync(i % 2 == 0 ? throughA : throughB, model));
        foreach (var client in new[] { throughA, throughB })
        {
            var result = await client.GetGrain<IUsageGrain>(0).RecordAiUsage(accounts[0].Usage());
            Assert.True(result.IsOk, result.Problem?.Detail);
        }

        // The HTTP gateway, which finds the silos in the membership table, charges through the cluster.
        var gateway = cluster.StartGateway();
        await ProcessCluster.WaitReadyAsync(gateway.Process, new Uri(gateway.Http, "/health/ready"), TimeSpan.FromSeconds(90));
        var driver = new HttpUsageDriver(gateway.Http, await cluster.MintTokenAsync(gateway, "service", Guid.NewGuid()));
        var acknowledged = new List<Guid>();
        foreach (var account in accounts)
        {
            var usage = account.Usage();
            var (charged, error) = await driver.RecordAsync(usage);
            Assert.True(charged, error);
            acknowledged.Add(usage.UsageId);
        }

        // Silo A (127.0.0.1) leaves: from then on only 127.0.0.2 can serve the gateway, and it does.
        siloA.Process.Signal(ChildSignal.Terminate);
        Assert.True(await siloA.Process.WaitForExitAsync(TimeSpan.FromSeconds(60)), siloA.Process.Tail());
        output.WriteLine($"silo A exited with {siloA.Process.ExitCode}");
        foreach (var account in accounts)
        {
            var usage = account.Usage();
            var (charged, error) = await driver.RecordAsync(usage);
            Assert.True(charged, $"after silo A left, through silo B at 127.0.0.2: {error}");
            acknowledged.Add(usage.UsageId);
        }

        await Ledger.AssertAcknowledgedUsagesChargedOnceAsync(cluster.ConnectionString, acknowledged);
        await Ledger.AssertBalancesEqualHistoryAsync(cluster.ConnectionString, accounts.Select(a => a.UserId).ToArray(), accounts.Select(a => a.ProjectId).ToArray());
    }
}
