using System.Net;
using Billing.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace Billing.Testing;

/// <summary>
/// The real parts the HTTP and browser tests start on a throwaway database: one silo with the billing grains (ADO.NET
/// clustering on that database) and the gateway on Kestrel on a free loopback port, configured as an operator would.
/// </summary>
public static class BillingStack
{
    /// <summary>The gateway's configuration, as command-line arguments (the way an operator would override it).</summary>
    public static string[] GatewayArgs(int port, string connectionString, string clusterId, string? signingKey, string environment = "Testing")
    {
        var args = new List<string>
        {
            $"--environment={environment}",
            $"--urls=http://127.0.0.1:{port}",
            $"--ConnectionStrings:Billing={connectionString}",
            $"--Orleans:ClusterId={clusterId}",
            "--Orleans:ServiceId=billing",
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:Billing=Warning",
        };
        if (signingKey is not null) args.Add($"--Auth:SigningKey={signingKey}");
        return args.ToArray();
    }

    /// <summary>A silo with the billing grains; membership in PostgreSQL (ADO.NET clustering).</summary>
    public static async Task<IHost> StartSiloAsync(string connectionString, string clusterId, Action<ISiloBuilder>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = "Testing", DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Polly", LogLevel.Error).AddConsole();
        builder.UseOrleans(silo =>
        {
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = connectionString;
            });
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = clusterId;
                o.ServiceId = "billing";
            });
            silo.ConfigureEndpoints(IPAddress.Loopback, PostgresServer.FreePort(), PostgresServer.FreePort());
            silo.AddBillingGrains(connectionString);
            configure?.Invoke(silo);
        });
        var host = builder.Build();
        await host.StartAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return host;
    }

    /// <summary>The gateway started with <paramref name="args"/>, once it answers <c>/health/ready</c>, and a client for it.</summary>
    public static async Task<(WebApplication Gateway, HttpClient Http)> StartGatewayAsync(Uri baseAddress, string[] args)
    {
        var gateway = Billing.Client.Program.BuildGateway(args);
        await gateway.StartAsync().WaitAsync(TimeSpan.FromMinutes(2));
        var http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(60) };
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (true)
        {
            using var ready = await http.GetAsync("/health/ready");
            if (ready.StatusCode == HttpStatusCode.OK) return (gateway, http);
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The gateway did not become ready.");
            await Task.Delay(250);
        }
    }

    /// <summary>Stops what <see cref="StartGatewayAsync"/> and <see cref="StartSiloAsync"/> started, gateway first.</summary>
    public static async Task StopAsync(WebApplication? gateway, HttpClient? http, IHost? silo)
    {
        http?.Dispose();
        if (gateway is not null)
        {
            await gateway.StopAsync(CancellationToken.None);
            await gateway.DisposeAsync();
        }

        if (silo is not null)
        {
            await silo.StopAsync(CancellationToken.None);
            silo.Dispose();
        }
    }
}
