using System.ComponentModel.DataAnnotations;

namespace Billing.Client.Hosting;

/// <summary>Section <c>Gateway</c>, key <c>DrainTimeoutSeconds</c>: how long a stopping gateway waits for its requests.</summary>
public sealed class DrainOptions
{
    /// <summary>On SIGTERM/Ctrl-C, the longest wait for in-flight requests before the process exits anyway.</summary>
    [Range(0, 600)]
    public int DrainTimeoutSeconds { get; set; } = 30;
}

public static class DrainSetup
{
    /// <summary>
    /// Graceful drain on SIGTERM (or Ctrl-C): Kestrel stops accepting connections at once, answers the requests already
    /// in flight (a keep-alive connection is closed after its current response), and the host waits for them up to
    /// Gateway:DrainTimeoutSeconds. Hosted services stop in reverse order, so the web server drains before the Orleans
    /// client disconnects: an in-flight request still reaches the cluster. /health/ready answers 503 while draining, so
    /// a load balancer stops sending.
    /// </summary>
    public static WebApplicationBuilder AddBillingDrain(this WebApplicationBuilder builder)
    {
        var drain = new DrainOptions();
        builder.Configuration.GetSection(HttpApiOptions.Section).Bind(drain);
        builder.Services.AddOptions<DrainOptions>().BindConfiguration(HttpApiOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(drain.DrainTimeoutSeconds));
        return builder;
    }
}
