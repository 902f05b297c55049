using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace Billing.Testing;

/// <summary>What differs between the clients of the tests, the bank and the bench.</summary>
public sealed class BillingClientOptions
{
    /// <summary>How long a grain call may take before it fails; null keeps Orleans' default (30 s).</summary>
    public TimeSpan? ResponseTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Console logging from this level; null (the default) logs nothing, so a test's output stays its own.</summary>
    public LogLevel? ConsoleLogLevel { get; set; }

    /// <summary>How often the client re-reads the gateway list; null keeps Orleans' default (1 minute).</summary>
    public TimeSpan? GatewayListRefreshPeriod { get; set; }

    /// <summary>Anything else, e.g. registering the serializer metadata of another grain assembly.</summary>
    public Action<IClientBuilder>? Configure { get; set; }
}

/// <summary>
/// The one Orleans client bootstrap of the tests, the bank and the bench: a hosted client of the billing cluster,
/// finding its gateways in PostgreSQL's membership table (ADO.NET clustering, as the HTTP gateway does) or given
/// fixed gateway endpoints. Disposing stops the host, quietly when the cluster is already gone.
/// </summary>
public sealed class BillingClusterClient : IAsyncDisposable
{
    public const string DefaultServiceId = "billing";

    private BillingClusterClient(IHost host)
    {
        Host = host;
        Client = host.Services.GetRequiredService<IClusterClient>();
    }

    public IHost Host { get; }

    public IClusterClient Client { get; }

    /// <summary>A client that finds the gateways in the membership table of <paramref name="connectionString"/>'s database.</summary>
    public static Task<BillingClusterClient> StartAsync(string connectionString, string clusterId, string serviceId = DefaultServiceId,
        BillingClientOptions? options = null, CancellationToken cancellationToken = default) =>
        StartAsync(client => client.UseAdoNetClustering(o =>
        {
            o.Invariant = "Npgsql";
            o.ConnectionString = connectionString;
        }), clusterId, serviceId, options, cancellationToken);

    /// <summary>A client that connects only to the given gateways (static clustering): to reach one silo in particular.</summary>
    public static Task<BillingClusterClient> StartAsync(IReadOnlyCollection<IPEndPoint> gateways, string clusterId, string serviceId = DefaultServiceId,
        BillingClientOptions? options = null, CancellationToken cancellationToken = default) =>
        StartAsync(client => client.UseStaticClustering(gateways.ToArray()), clusterId, serviceId, options, cancellationToken);

    private static async Task<BillingClusterClient> StartAsync(Action<IClientBuilder> clustering, string clusterId, string serviceId,
        BillingClientOptions? options, CancellationToken cancellationToken)
    {
        options ??= new BillingClientOptions();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        if (options.ConsoleLogLevel is { } level) builder.Logging.SetMinimumLevel(level).AddConsole();
        builder.UseOrleansClient(client =>
        {
            clustering(client);
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = clusterId;
                o.ServiceId = serviceId;
            });
            if (options.ResponseTimeout is { } timeout) client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = timeout);
            if (options.GatewayListRefreshPeriod is { } refresh) client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = refresh);
            options.Configure?.Invoke(client);
        });
        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken);
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return new BillingClusterClient(host);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await Host.StopAsync(stop.Token);
        }
        catch (Exception)
        {
            // The cluster may be gone already: nothing left to say goodbye to.
        }

        Host.Dispose();
    }
}
