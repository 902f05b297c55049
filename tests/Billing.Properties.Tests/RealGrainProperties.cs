using Billing.Hosting;
using Billing.Testing;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;

namespace Billing.Properties.Tests;

/// <summary>A test cluster of its own for a property class, on its own database; subclasses add to the silo.</summary>
public class RealGrainCluster : IAsyncLifetime
{
    public InProcessTestCluster Cluster { get; private set; } = null!;

    public string ConnectionString { get; private set; } = null!;

    protected virtual string DatabaseName => "props";

    /// <summary>What the silo needs beyond the billing grains.</summary>
    protected virtual void ConfigureSilo(ISiloBuilder silo)
    {
    }

    public async Task InitializeAsync()
    {
        ConnectionString = await PostgresServer.Instance.CreateDatabaseAsync(DatabaseName);
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddBillingGrains(ConnectionString);
            ConfigureSilo(silo);
            silo.Services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        });
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }
}

/// <summary>Random operation sequences on one real user account (grains on PostgreSQL), then the ledger invariants checked in the database.</summary>
public class RealGrainProperties(RealGrainCluster fixture) : IClassFixture<RealGrainCluster>
{
    private static readonly Gen<LedgerOp[]> Ops = Gen.Frequency(
            (6, from i in Gen.Choose(0, 2_000_000) from o in Gen.Choose(0, 200_000) select (LedgerOp)new LedgerOp.Usage(i * 1_000_000L + o, true)),
            (2, from c in Gen.Choose(1, 50_000) select (LedgerOp)new LedgerOp.TopUp(c / 10_000m)),
            (1, from pro in Gen.Elements(true, false) from q in Gen.Choose(0, 50_000) select (LedgerOp)new LedgerOp.Plan(pro, pro ? q / 10_000m : 0m)))
        .ListOf().Select(l => l.Take(40).ToArray());

    [Fact]
    public async Task Random_operations_on_a_real_account_keep_balance_equal_to_the_sum_of_its_history()
    {
        var grains = fixture.Cluster.Client;
        var model = Guid.NewGuid();
        Assert.True((await grains.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput(3.00m, 15.00m, "USD", DateTimeOffset.UtcNow.AddMinutes(-1)))).IsOk);
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        foreach (var ops in Ops.Sample(12, 15))
        {
            var user = Guid.NewGuid();
            Assert.True((await grains.GetGrain<IUserGrain>(user).Initialize()).IsOk);
            // Some operations concurrently (group commit), some one after another.
            var tasks = new List<Task>();
            foreach (var op in ops)
            {
                Task t = op switch
                {
                    // Usage.Cost carries the token counts here: input = Cost / 1e6, output = Cost % 1e6.
                    LedgerOp.Usage u => grains.GetGrain<IUsageGrain>(0).RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, (long)u.Cost / 1_000_000, (long)u.Cost % 1_000_000)),
                    LedgerOp.TopUp t2 => grains.GetGrain<IUserGrain>(user).Credit(new AccountCredit(t2.Amount, HistoryReasons.TopUp, Guid.NewGuid())),
                    LedgerOp.Plan p => grains.GetGrain<IUserGrain>(user).ChangePlan(new PlanChange(p.IsPro, p.MonthlyQuota)),
                    _ => Task.CompletedTask,
                };
                tasks.Add(t);
                if (rng.Next(3) == 0) await Task.WhenAll(tasks);
            }

            await Task.WhenAll(tasks);
            var view = (await grains.GetGrain<IUserGrain>(user).GetAccount()).Value!;
            var context = $"seed {seed}, ops [{string.Join(", ", ops.Select(o => o.ToString()))}]";
            var snapshot = await LedgerSnapshot.ReadAsync(fixture.ConnectionString, new LedgerScope([user], []));
            var violations = LedgerInvariants.FindViolations(snapshot);
            Assert.True(violations.Count == 0, $"{string.Join('\n', violations)}\n{context}");
            var stored = snapshot.Accounts[(AccountKind.User, user)];
            Assert.True(view.Balance == stored.Balance && view.MonthUsed == stored.MonthUsed, $"grain {view.Balance}/{view.MonthUsed} != database {stored.Balance}/{stored.MonthUsed}; {context}");
        }
    }
}
