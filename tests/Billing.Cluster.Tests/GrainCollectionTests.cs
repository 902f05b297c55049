using System.Diagnostics;

namespace Billing.Cluster.Tests;

/// <summary>Idle accounts leave the silo's memory (Orleans:GrainCollection) and come back from the ledger unchanged.</summary>
public sealed class GrainCollectionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Idle_account_grains_are_deactivated_and_reactivate_with_their_balance()
    {
        await using var cluster = await ProcessCluster.CreateAsync("collect");
        // A short collection age (the default is 10 minutes), checked every second.
        var silo = cluster.StartSilo("collecting", new Dictionary<string, string?>
        {
            ["Orleans__GrainCollection__CollectionAge"] = "00:00:04",
            ["Orleans__GrainCollection__CollectionQuantum"] = "00:00:01",
        });
        await ProcessCluster.WaitReadyAsync(silo);
        await cluster.WaitActiveAsync(TimeSpan.FromSeconds(30), silo.SiloPort);
        var client = await cluster.ConnectAsync(silo.GatewayPort);
        var model = await BillingAccounts.CreateModelAsync(client);
        var accounts = new List<BillingAccounts>();
        for (var i = 0; i < 20; i++) accounts.Add(await BillingAccounts.CreateAsync(client, model));
        var usage = client.GetGrain<IUsageGrain>(0);
        foreach (var account in accounts) Assert.True((await usage.RecordAiUsage(account.Usage())).IsOk);
        var balances = new Dictionary<Guid, decimal>();
        foreach (var account in accounts) balances[account.ProjectId] = (await client.GetGrain<IProjectGrain>(account.ProjectId).GetAccount()).Value!.Balance;

        var management = client.GetGrain<IManagementGrain>(0);
        // The silo's own count of its activations, by grain class (named with its assembly, e.g. "Billing.Accounts.ProjectGrain,Billing.Grains").
        async Task<int> ProjectActivations() =>
            (await management.GetSimpleGrainStatistics()).Where(s => s.GrainType.Contains(".ProjectGrain", StringComparison.Ordinal)).Sum(s => s.ActivationCount);
        var active = await ProjectActivations();
        output.WriteLine(string.Join("; ", (await management.GetSimpleGrainStatistics()).Select(s => $"{s.GrainType}: {s.ActivationCount}")));
        Assert.Equal(accounts.Count, active);

        // Nobody calls them now: within a few collection periods they are gone.
        var clock = Stopwatch.StartNew();
        while (await ProjectActivations() > 0 && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(500);
        output.WriteLine($"{active} project activations collected in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(0, await ProjectActivations());

        // The next call reactivates each from the ledger: the same balance, and it charges as before.
        foreach (var account in accounts)
        {
            Assert.Equal(balances[account.ProjectId], (await client.GetGrain<IProjectGrain>(account.ProjectId).GetAccount()).Value!.Balance);
            Assert.True((await usage.RecordAiUsage(account.Usage())).IsOk);
        }

        await Ledger.AssertBalancesEqualHistoryAsync(cluster.ConnectionString, accounts.Select(a => a.UserId).ToArray(), accounts.Select(a => a.ProjectId).ToArray());
    }
}
