using Billing.Diagnostics;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Billing.Silo.Hosting;

public static class TelemetryExtensions
{
    /// <summary>
    /// Logs: the console (format from Logging:Console:FormatterName: json in production, one line per event in
    /// Development), Polly's per-call lines filtered to warnings. Metrics: the <c>Billing</c> meter (and with
    /// Metrics:IncludeOrleans, Orleans' own) through OpenTelemetry to the console and/or OTLP when configured.
    /// </summary>
    public static WebApplicationBuilder AddBillingTelemetry(this WebApplicationBuilder builder)
    {
        builder.Logging.AddFilter("Polly", LogLevel.Warning);

        var metrics = builder.Configuration.GetSection(BillingMetricsOptions.SectionName).Get<BillingMetricsOptions>() ?? new BillingMetricsOptions();
        builder.Services.AddOptions<BillingMetricsOptions>().BindConfiguration(BillingMetricsOptions.SectionName);
        if (!metrics.Console && string.IsNullOrWhiteSpace(metrics.OtlpEndpoint)) return builder;

        var interval = (int)TimeSpan.FromSeconds(Math.Max(1, metrics.ExportIntervalSeconds)).TotalMilliseconds;
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(
                serviceName: "billing-silo",
                serviceInstanceId: $"{Environment.MachineName}:{builder.Configuration[$"{SiloClusterOptions.SectionName}:SiloPort"] ?? "11111"}"))
            .WithMetrics(meters =>
            {
                meters.AddMeter(BillingMetrics.MeterName);
                if (metrics.IncludeOrleans) meters.AddMeter("Microsoft.Orleans");
                if (metrics.Console)
                {
                    meters.AddConsoleExporter((_, reader) => reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = interval);
                }

                if (!string.IsNullOrWhiteSpace(metrics.OtlpEndpoint))
                {
                    meters.AddOtlpExporter((exporter, reader) =>
                    {
                        var http = string.Equals(metrics.OtlpProtocol, "http", StringComparison.OrdinalIgnoreCase);
                        var endpoint = new Uri(metrics.OtlpEndpoint);
                        // An endpoint set in code is used as is: over HTTP, a bare collector address gets the metrics path.
                        if (http && endpoint.AbsolutePath == "/") endpoint = new Uri(endpoint, "/v1/metrics");
                        exporter.Endpoint = endpoint;
                        exporter.Protocol = http ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
                        reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = interval;
                    });
                }
            });
        return builder;
    }
}
