namespace Billing.Silo.Hosting;

/// <summary>
/// Section <c>Orleans</c>: the keys of Orleans' own concepts this host reads — which cluster the silo joins and where it
/// listens (Orleans:ClusterId, Orleans:ServiceId, Orleans:SiloPort, Orleans:GatewayPort). Settings of ours go to
/// <see cref="SiloWebOptions"/>, not into Orleans' section.
/// </summary>
public sealed class SiloClusterOptions
{
    public const string SectionName = "Orleans";

    /// <summary>Silos and clients with the same cluster id form one cluster (rows of OrleansMembershipTable).</summary>
    public string ClusterId { get; set; } = "billing";

    /// <summary>Identifies the service across deployments (the key of Orleans' grain storage rows).</summary>
    public string ServiceId { get; set; } = "billing";

    /// <summary>Silo-to-silo port, on 127.0.0.1.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port the cluster's clients (the gateway) connect to, on 127.0.0.1.</summary>
    public int GatewayPort { get; set; } = 30000;
}

/// <summary>Section <c>Silo</c>: the silo process's own web app (the Orleans Dashboard and the health endpoints).</summary>
public sealed class SiloWebOptions
{
    public const string SectionName = "Silo";

    /// <summary>
    /// Where the dashboard port was set before it had a section of its own. Still read when Silo:DashboardPort is not
    /// set, so existing scripts and environments (Orleans__DashboardPort) keep working. For that reason appsettings.json
    /// does not set Silo:DashboardPort: a default there would hide the old key given on the command line.
    /// </summary>
    public const string LegacyDashboardPortKey = "Orleans:DashboardPort";

    /// <summary>HTTP port of the Orleans Dashboard, health and nothing else, on 127.0.0.1 (unless <c>--urls</c> is given).</summary>
    public int DashboardPort { get; set; } = 8080;

    /// <summary>The options as configured: Silo:DashboardPort, else the legacy Orleans:DashboardPort, else 8080.</summary>
    public static SiloWebOptions From(IConfiguration configuration)
    {
        var options = new SiloWebOptions();
        Bind(options, configuration);
        return options;
    }

    public static void Bind(SiloWebOptions options, IConfiguration configuration)
    {
        if (configuration.GetValue<int?>(LegacyDashboardPortKey) is { } legacyPort) options.DashboardPort = legacyPort;
        configuration.GetSection(SectionName).Bind(options);
    }
}

/// <summary>Section <c>Billing</c>: what the host does besides running the silo.</summary>
public sealed class BillingHostOptions
{
    public const string SectionName = "Billing";

    /// <summary>Apply <c>sql/</c> (idempotent, under an advisory lock) before the silo starts.</summary>
    public bool ApplySchema { get; set; } = true;
}

/// <summary>Section <c>Metrics</c>: where the OpenTelemetry metrics go. Nothing is exported unless asked.</summary>
public sealed class BillingMetricsOptions
{
    public const string SectionName = "Metrics";

    /// <summary>Print the metrics to standard output every <see cref="ExportIntervalSeconds"/> (OpenTelemetry console exporter).</summary>
    public bool Console { get; set; }

    /// <summary>Send the metrics by OTLP to this endpoint (an OpenTelemetry Collector, or Prometheus' OTLP receiver), e.g. http://127.0.0.1:4318.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary><c>grpc</c> (default, port 4317) or <c>http</c> (http/protobuf, port 4318).</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    public int ExportIntervalSeconds { get; set; } = 15;

    /// <summary>Also export Orleans' own meter (<c>Microsoft.Orleans</c>): activations, messaging, membership.</summary>
    public bool IncludeOrleans { get; set; }
}
