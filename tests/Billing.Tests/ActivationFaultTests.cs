using Npgsql;

namespace Billing.Tests;

/// <summary>A cluster on a database of its own, which the test makes unreachable (no other test shares it).</summary>
public sealed class UnreachableDatabaseFixture : ClusterFixture;

/// <summary>
/// Issue 9, defect 13, at activation: an account or pricing grain that cannot load itself because the database is
/// unreachable fails its activation, and that fault too must cross the grain boundary as a serialisable, retryable
/// type (a raw Npgsql exception has no Orleans codec: the caller got a CodecNotFoundException, the gateway a 500).
/// </summary>
public sealed class ActivationFaultTests(UnreachableDatabaseFixture fixture) : IClassFixture<UnreachableDatabaseFixture>
{
    [Fact]
    public async Task ReviewDefect13_ActivationWithTheDatabaseDownFailsWithTheRetryableFaultAndWorksAfterwards()
    {
        var user = Guid.NewGuid();
        var model = Guid.NewGuid();
        var database = new NpgsqlConnectionStringBuilder(fixture.ConnectionString).Database!;
        await SetConnectionsAllowed(database, allowed: false);
        try
        {
            await Assert.ThrowsAsync<BillingUnavailableException>(() => fixture.Grains.GetGrain<IUserGrain>(user).GetAccount());
            await Assert.ThrowsAsync<BillingUnavailableException>(() => fixture.Grains.GetGrain<IModelPricingGrain>(model).GetPricing());
        }
        finally
        {
            await SetConnectionsAllowed(database, allowed: true);
        }

        // The failed activations left nothing behind: the same grains activate and answer once the database is back.
        var initialized = await fixture.Grains.GetGrain<IUserGrain>(user).Initialize();
        Assert.True(initialized.IsOk, initialized.Problem?.Detail);
        Assert.Equal(10.0000m, initialized.Value!.Account.Balance);
        Assert.Null((await fixture.Grains.GetGrain<IModelPricingGrain>(model).GetPricing()).Current);
    }

    /// <summary>Refuses (or allows again) new connections to the database and ends the open ones.</summary>
    private static async Task SetConnectionsAllowed(string database, bool allowed)
    {
        await using var admin = new NpgsqlConnection(Billing.Testing.PostgresServer.Instance.AdminConnectionString);
        await admin.OpenAsync();
        await using (var alter = new NpgsqlCommand($"ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS {(allowed ? "true" : "false")}", admin))
            await alter.ExecuteNonQueryAsync();
        if (allowed) return;
        await using var terminate = new NpgsqlCommand("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", admin);
        terminate.Parameters.Add(new NpgsqlParameter<string> { TypedValue = database });
        await terminate.ExecuteNonQueryAsync();
    }
}
