namespace Billing.Client.Hosting;

/// <summary>
/// The gateway's references to the usage grains it spreads calls over (<see cref="ClusterClientSetup.UsageGrainKeys"/>),
/// made once: <c>GetGrain</c> resolves the grain interface's type each time, about 5 % of the gateway's CPU per usage
/// when it was called per request.
/// </summary>
public sealed class UsageGrains(IClusterClient cluster)
{
    private readonly IUsageGrain[] grains = Enumerable.Range(0, ClusterClientSetup.UsageGrainKeys)
        .Select(key => cluster.GetGrain<IUsageGrain>(key))
        .ToArray();

    /// <summary>One of the usage grains, at random (see <see cref="ClusterClientSetup.UsageGrainKey"/> for why not one).</summary>
    public IUsageGrain Any() => grains[ClusterClientSetup.UsageGrainKey()];
}
