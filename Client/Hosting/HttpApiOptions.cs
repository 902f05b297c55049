using System.ComponentModel.DataAnnotations;

namespace Billing.Client.Hosting;

/// <summary>
/// Limits of the HTTP API (configuration section <c>Gateway</c>). Not called GatewayOptions: Orleans' client has its own
/// <see cref="Orleans.Configuration.GatewayOptions"/> (the silo gateways it connects to). The section keeps its name so
/// the configuration keys (Gateway:MaxRequestBodyBytes, …) did not change.
/// </summary>
public sealed class HttpApiOptions
{
    public const string Section = "Gateway";

    /// <summary>Largest request body accepted; bigger bodies get 413.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 64 * 1024;

    /// <summary>Deepest JSON nesting accepted; deeper bodies get 400.</summary>
    [Range(4, 256)]
    public int MaxJsonDepth { get; set; } = 32;

    /// <summary>How long one call into the cluster may take before the request fails with 503.</summary>
    [Range(1, 600)]
    public int ClusterCallTimeoutSeconds { get; set; } = 10;
}
