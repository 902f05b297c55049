using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Billing.Client.Hosting;

/// <summary>Section <c>Tracing</c>: where the gateway's spans go (the silo reads the same keys). Nothing unless asked.</summary>
public sealed class TracingOptions
{
    public const string Section = "Tracing";

    /// <summary>Send spans by OTLP here (an OpenTelemetry Collector, Jaeger, Tempo), e.g. http://collector:4317.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary><c>grpc</c> (default, port 4317) or <c>http</c> (http/protobuf, port 4318; <c>/v1/traces</c> is added to a bare address).</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>Trace even without an OTLP endpoint (an exporter added in code, as the tests do).</summary>
    public bool Enabled { get; set; }

    public bool IsOn => Enabled || !string.IsNullOrWhiteSpace(OtlpEndpoint);

    /// <summary>The section as configured (defaults when absent): read at start-up, before the services exist.</summary>
    public static TracingOptions From(IConfiguration configuration) => configuration.GetSection(Section).Get<TracingOptions>() ?? new TracingOptions();

    /// <summary>The OTLP exporter's settings from these options (the endpoint as given; over HTTP the traces path added to a bare address).</summary>
    public void ConfigureOtlp(OtlpExporterOptions exporter)
    {
        var http = string.Equals(OtlpProtocol, "http", StringComparison.OrdinalIgnoreCase);
        var endpoint = new Uri(OtlpEndpoint!);
        if (http && endpoint.AbsolutePath == "/") endpoint = new Uri(endpoint, "/v1/traces");
        exporter.Endpoint = endpoint;
        exporter.Protocol = http ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
    }
}

public static class TracingSetup
{
    /// <summary>Orleans' grain-call spans (the gateway compiles against the contract only, so the names are repeated here).</summary>
    public static readonly string[] OrleansSources = ["Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];

    /// <summary>
    /// OpenTelemetry traces of the gateway: one server span per HTTP request (health probes left out), and the Orleans
    /// client's grain-call spans under it; Orleans activity propagation (<see cref="ClusterClientSetup"/>) carries the trace
    /// into the silos, whose grain calls and Npgsql statements join it. Exported by OTLP when Tracing:OtlpEndpoint is set.
    /// </summary>
    public static WebApplicationBuilder AddBillingTracing(this WebApplicationBuilder builder)
    {
        var tracing = TracingOptions.From(builder.Configuration);
        if (!tracing.IsOn) return builder;

        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName: "billing-gateway", serviceInstanceId: Environment.MachineName))
            .WithTracing(traces =>
            {
                traces.AddAspNetCoreInstrumentation(o => o.Filter = http => !http.Request.Path.StartsWithSegments("/health"));
                traces.AddSource(OrleansSources);
                if (!string.IsNullOrWhiteSpace(tracing.OtlpEndpoint)) traces.AddOtlpExporter(tracing.ConfigureOtlp);
            });
        return builder;
    }
}
