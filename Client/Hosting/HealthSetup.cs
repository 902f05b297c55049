using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Billing.Client.Hosting;

public static partial class HealthSetup
{
    public const string ReadyTag = "ready";

    public static WebApplicationBuilder AddBillingHealth(this WebApplicationBuilder builder)
    {
        builder.Services.AddHealthChecks()
            .AddCheck<BillingClusterHealthCheck>("billing-cluster", tags: [ReadyTag]);
        return builder;
    }

    /// <summary>Healthy when a silo answers and the billing database is reachable from it.</summary>
    internal sealed partial class BillingClusterHealthCheck(IClusterClient cluster, IHostApplicationLifetime lifetime, ILogger<BillingClusterHealthCheck> logger) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            // Draining (SIGTERM): a load balancer that still probes takes this gateway out before it exits.
            if (lifetime.ApplicationStopping.IsCancellationRequested) return HealthCheckResult.Unhealthy("The gateway is stopping.");
            try
            {
                await cluster.GetGrain<IBillingHealthGrain>(0).CheckDatabase().WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
                return HealthCheckResult.Healthy();
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogNotReady(logger, exception.GetType().Name, exception.Message);
                return HealthCheckResult.Unhealthy("The billing cluster or its database is not reachable.");
            }
        }

        [LoggerMessage(Level = LogLevel.Warning, Message = "Not ready: {ExceptionType}: {Reason}")]
        private static partial void LogNotReady(ILogger logger, string exceptionType, string reason);
    }
}
