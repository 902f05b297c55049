using System.ComponentModel.DataAnnotations;

namespace Billing.Gateway.Hosting;

/// <summary>Limits of the HTTP surface (configuration section <c>Gateway</c>).</summary>
public sealed class GatewayOptions
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
