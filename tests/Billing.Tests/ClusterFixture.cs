using Billing.Accounts;
using Billing.Hosting;
using Billing.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.TestingHost;

namespace Billing.Tests;

/// <summary>
/// One Orleans test cluster hosting the billing grains on its own database of the throwaway PostgreSQL,
/// shared by a collection. Tests use fresh ids, so they neither see nor disturb each other.
/// </summary>
public class ClusterFixture : IAsyncLifetime
{
    public InProcessTestCluster Cluster { get; private set; } = null!;

    public string ConnectionString { get; private set; } = null!;

    public AdjustableClock Clock { get; } = new();

    public IGrainFactory Grains => Cluster.Client;

    public async Task InitializeAsync()
    {
        ConnectionString = await PostgresServer.Instance.CreateDatabaseAsync("core");
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddBillingGrains(ConnectionString);
            silo.Services.AddSingleton<TimeProvider>(Clock);
            silo.Services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
            // The test silo's own billing grain: it charges accounts directly (setting up exact cases), which an
            // account refuses from any grain that is not a billing grain.
            silo.Services.AddSingleton(new TrustedBillingGrain(typeof(TestChargerGrain)));
            ConfigureSilo(silo);
        });
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    /// <summary>More silo configuration for a fixture of its own.</summary>
    protected virtual void ConfigureSilo(ISiloBuilder silo)
    {
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }

    public NpgsqlConnection OpenDatabase()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        connection.Open();
        return connection;
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "billing cluster";
}

/// <summary>A cluster of its own, so moving its clock disturbs no other test.</summary>
public sealed class ClockClusterFixture : ClusterFixture
{
    // Holds: the expiry scan runs every second here, so a test sees an account that is not active record its expiries.
    protected override void ConfigureSilo(ISiloBuilder silo) =>
        silo.Services.Configure<HoldOptions>(options => (options.ExpiryScanSeconds, options.ExpiryScanGraceSeconds) = (1, 1));
}

[CollectionDefinition(Name)]
public sealed class ClockClusterCollection : ICollectionFixture<ClockClusterFixture>
{
    public const string Name = "billing cluster with a movable clock";
}

/// <summary>
/// A cluster of its own for the tests that move its clock backwards (a silo whose clock is behind): on the movable
/// clock's cluster that would put the clock behind where other tests left it and what they stored by it.
/// </summary>
public sealed class SkewClockClusterFixture : ClusterFixture;

[CollectionDefinition(Name)]
public sealed class SkewClockClusterCollection : ICollectionFixture<SkewClockClusterFixture>
{
    public const string Name = "skew-clock";
}

/// <summary>A cluster of its own for the test that restarts its silo (<see cref="SiloRestartTests"/>).</summary>
[CollectionDefinition(Name)]
public sealed class SiloRestartCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "silo restart";
}
