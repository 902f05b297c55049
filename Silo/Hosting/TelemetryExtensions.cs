using Billing.Diagnostics;
using Npgsql;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

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
        var tracing = builder.Configuration.GetSection(BillingTracingOptions.SectionName).Get<BillingTracingOptions>() ?? new BillingTracingOptions();
        var metricsOn = metrics.Console || !string.IsNullOrWhiteSpace(metrics.OtlpEndpoint);
        if (!metricsOn && string.IsNullOrWhiteSpace(tracing.OtlpEndpoint)) return builder;

        var interval = (int)TimeSpan.FromSeconds(Math.Max(1, metrics.ExportIntervalSeconds)).TotalMilliseconds;
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(
                serviceName: "billing-silo",
                serviceInstanceId: $"{Environment.MachineName}:{builder.Configuration[$"{SiloClusterOptions.SectionName}:SiloPort"] ?? "11111"}"));
        if (!string.IsNullOrWhiteSpace(tracing.OtlpEndpoint))
        {
            // Grain calls (their trace comes from the caller through Orleans' activity propagation) and Npgsql's statements.
            telemetry.WithTracing(traces => traces
                .AddSource(BillingTracing.OrleansSources)
                .AddSource(BillingTracing.SourceName)
                .AddNpgsql()
                .AddOtlpExporter(exporter =>
                {
                    var http = string.Equals(tracing.OtlpProtocol, "http", StringComparison.OrdinalIgnoreCase);
                    var endpoint = new Uri(tracing.OtlpEndpoint);
                    if (http && endpoint.AbsolutePath == "/") endpoint = new Uri(endpoint, "/v1/traces");
                    exporter.Endpoint = endpoint;
                    exporter.Protocol = http ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
                }));
        }

        if (!metricsOn) return builder;
        telemetry.WithMetrics(meters =>
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
