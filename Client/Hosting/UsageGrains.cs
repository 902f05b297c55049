namespace Billing.Client.Hosting;

/// <summary>
/// The gateway's references to the usage grains it spreads calls over (<see cref="ClusterClientSetup.UsageGrainKeys"/>),
/// made once: <c>GetGrain</c> resolves the grain interface's type each time, about 5 % of the gateway's CPU per usage
/// when it was called per request.
/// </summary>
public sealed class UsageGrains(IClusterClient cluster)
{
    // Made on first use, inside the request: a client that is not connected yet throws from GetGrain, and the request
    // must have remembered its usage id by then (its 503 names it). A failed attempt is not kept; the next call retries.
    private IUsageGrain[]? grains;

    /// <summary>One of the usage grains, at random (see <see cref="ClusterClientSetup.UsageGrainKey"/> for why not one).</summary>
    public IUsageGrain Any() => (grains ??= Create())[ClusterClientSetup.UsageGrainKey()];

    private IUsageGrain[] Create() => Enumerable.Range(0, ClusterClientSetup.UsageGrainKeys).Select(key => cluster.GetGrain<IUsageGrain>(key)).ToArray();
}
