using Billing.Hosting;
using Orleans.Configuration;

namespace Billing.Client.Hosting;

public static partial class ClusterClientSetup
{
    /// <summary>
    /// The Orleans client: membership from PostgreSQL (ADO.NET clustering, <c>ConnectionStrings:Billing</c>),
    /// cluster and service id from <c>Orleans:ClusterId</c>/<c>Orleans:ServiceId</c> (default "billing").
    /// It keeps retrying to connect, so the gateway may start before any silo; until then /health/ready is 503.
    /// </summary>
    public static WebApplicationBuilder AddBillingClusterClient(this WebApplicationBuilder builder)
    {
        var connectionString = builder.Configuration.GetConnectionString("Billing");
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new StartupConfigurationException(
                "ConnectionStrings:Billing is not set. Set it in configuration or as the environment variable ConnectionStrings__Billing " +
                "(the Development environment has a default).");
        }

        var tracing = TracingOptions.From(builder.Configuration);
        builder.UseOrleansClient(client =>
        {
            client.UseAdoNetClustering(options =>
            {
                options.Invariant = "Npgsql";
                options.ConnectionString = connectionString;
            });
            client.Services.AddOptions<ClusterOptions>()
                .Configure(options =>
                {
                    options.ClusterId = "billing";
                    options.ServiceId = "billing";
                })
                .BindConfiguration("Orleans");
            client.Services.AddOptions<HttpApiOptions>();
            // Learn within a second that a silo was declared dead: until then the client keeps sending a share of the
            // calls (stateless-worker calls go round-robin over the live gateways) to its gateway, where they hang.
            client.Services.AddOptions<GatewayOptions>()
                .Configure(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(1))
                .BindConfiguration("Orleans:Gateways");
            client.Services.AddOptions<ClientMessagingOptions>()
                .Configure<Microsoft.Extensions.Options.IOptions<HttpApiOptions>>((messaging, api) =>
                    messaging.ResponseTimeout = TimeSpan.FromSeconds(api.Value.ClusterCallTimeoutSeconds));
            client.UseConnectionRetryFilter<RetryConnectingForever>();
            // Grain calls carry the HTTP request's trace (W3C trace context) into the silos. Only when the gateway traces
            // (Tracing:*): without a listener the filter propagates nothing, yet every grain call would still go through
            // Orleans' filter pipeline (an invoker and an async step more per call).
            if (tracing.IsOn) client.AddActivityPropagation();
        });

        builder.Services.AddSingleton<UsageGrains>();

        // Kestrel starts while the client is still connecting: /health/live answers at once.
        builder.Services.Configure<HostOptions>(o => o.ServicesStartConcurrently = true);
        return builder;
    }

    /// <summary>How many usage-grain ids the gateway spreads its usage calls over.</summary>
    public const int UsageGrainKeys = 32;

    /// <summary>
    /// The key of the (stateless) usage grain for one call: a random one of <see cref="UsageGrainKeys"/>. An Orleans
    /// client sends every call for one grain id through the one silo gateway its bucket picked (Orleans 10 ignores the
    /// stateless worker's "unordered" property on the client), so with key 0 alone every usage of this gateway went
    /// through one silo and stalled with it when it froze. Spread over many ids, a frozen silo holds back only the
    /// calls that went through it, until it is declared dead and dropped from the gateway list.
    /// </summary>
    public static long UsageGrainKey() => Random.Shared.Next(UsageGrainKeys);

    /// <summary>Retries the first connection to the cluster every two seconds until the host stops.</summary>
    internal sealed partial class RetryConnectingForever(ILogger<RetryConnectingForever> logger) : IClientConnectionRetryFilter
    {
        private int attempts;

        public async Task<bool> ShouldRetryConnectionAttempt(Exception exception, CancellationToken cancellationToken)
        {
            if (cancellationToken.IsCancellationRequested) return false;
            var attempt = Interlocked.Increment(ref attempts);
            LogRetry(logger, attempt, exception.GetType().Name, exception.Message);
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return false;
            }

            return true;
        }

        [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot reach the billing cluster yet (attempt {Attempt}, {ExceptionType}: {Reason}); retrying in 2 s")]
        private static partial void LogRetry(ILogger logger, int attempt, string exceptionType, string reason);
    }
}
