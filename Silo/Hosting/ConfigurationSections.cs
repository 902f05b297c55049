namespace Billing.Silo.Hosting;

/// <summary>
/// Section <c>Orleans</c>: the keys of Orleans' own concepts this host reads — which cluster the silo joins and where it
/// listens (Orleans:ClusterId, Orleans:ServiceId, Orleans:SiloPort, Orleans:GatewayPort, Orleans:AdvertisedIPAddress,
/// Orleans:ListenOnAnyHostAddress). Settings of ours go to <see cref="SiloWebOptions"/>, not into Orleans' section.
/// </summary>
public sealed class SiloClusterOptions
{
    public const string SectionName = "Orleans";

    /// <summary>Silos and clients with the same cluster id form one cluster (rows of OrleansMembershipTable).</summary>
    public string ClusterId { get; set; } = "billing";

    /// <summary>Identifies the service across deployments (the key of Orleans' grain storage rows).</summary>
    public string ServiceId { get; set; } = "billing";

    /// <summary>Silo-to-silo port.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port the cluster's clients (the gateway) connect to.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// The address this silo publishes in the membership table, where the other silos and the clients reach it (an IP
    /// address or a host name resolved at start). Unset: 127.0.0.1 in Development, else the host's own address as
    /// Orleans resolves it (the first IPv4 address of the host name).
    /// </summary>
    public string? AdvertisedIPAddress { get; set; }

    /// <summary>Bind the silo and gateway ports on every interface (0.0.0.0), not only on the advertised address.</summary>
    public bool ListenOnAnyHostAddress { get; set; } = true;
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

    /// <summary>
    /// HTTP port of the silo's web app: the health endpoints, and the Orleans Dashboard too in Development when the
    /// dashboard has no port of its own (<see cref="SiloDashboardOptions.Port"/>). On 127.0.0.1 in Development, on every
    /// address otherwise (an orchestrator probes it), unless <c>--urls</c> is given. The key keeps its historical name.
    /// </summary>
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

    /// <summary>
    /// Apply <c>sql/</c> (idempotent, under an advisory lock) before the silo starts. False unless configured (true in
    /// appsettings.Development.json): in production the schema is its own step (<c>dotnet Billing.Silo.dll migrate</c>),
    /// so the silo's database role needs no DDL rights; the silo then only checks that the schema is complete.
    /// </summary>
    public bool ApplySchema { get; set; }

    /// <summary>
    /// For the <c>migrate</c> verb: the database role the silos run as. After the schema, it is granted exactly what a
    /// silo needs (see <c>SchemaMigrator.GrantRuntimeAccessAsync</c>). Unset: no grants.
    /// </summary>
    public string? SiloRole { get; set; }
}

/// <summary>
/// Section <c>Silo:Dashboard</c>: the Orleans Dashboard on a port of its own, apart from the health endpoints, behind a
/// user name and password (HTTP Basic) when configured.
/// </summary>
public sealed class SiloDashboardOptions
{
    public const string SectionName = "Silo:Dashboard";

    /// <summary>
    /// The dashboard's own HTTP port (the dashboard answers only there, health never there). Unset: in Development the
    /// dashboard shares <see cref="SiloWebOptions.DashboardPort"/> with health, as before; elsewhere it is not served.
    /// </summary>
    public int? Port { get; set; }

    /// <summary>With <see cref="Password"/>: the dashboard asks for these credentials (HTTP Basic; use TLS in front of it).</summary>
    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>
    /// Outside Development a dashboard port without credentials fails start-up unless this is true (e.g. the port is
    /// reachable from a private network only).
    /// </summary>
    public bool AllowAnonymous { get; set; }

    public bool RequiresCredentials => !string.IsNullOrEmpty(Username) && !string.IsNullOrEmpty(Password);
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

/// <summary>Section <c>Tracing</c>: OpenTelemetry spans of grain calls and PostgreSQL statements, sent by OTLP when set.</summary>
public sealed class BillingTracingOptions
{
    public const string SectionName = "Tracing";

    /// <summary>e.g. http://collector:4317 (gRPC) or http://collector:4318 with <see cref="OtlpProtocol"/> http.</summary>
    public string? OtlpEndpoint { get; set; }

    public string OtlpProtocol { get; set; } = "grpc";
}
