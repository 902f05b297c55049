using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Dashboard;

// An agent silo of the billing cluster. Configuration as the billing silo's: ConnectionStrings:Billing,
// Orleans:ClusterId, Orleans:ServiceId, Orleans:SiloPort (default 11211), Orleans:GatewayPort (default 30100).
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Logging.AddFilter("Polly", LogLevel.Warning);

var connectionString = builder.Configuration.GetConnectionString("Billing")
    ?? throw new InvalidOperationException("ConnectionStrings:Billing is not set (environment: ConnectionStrings__Billing).");
var orleans = builder.Configuration.GetSection("Orleans");

builder.UseOrleans(silo =>
{
    silo.UseAdoNetClustering(options =>
    {
        options.Invariant = "Npgsql";
        options.ConnectionString = connectionString;
    });
    silo.Configure<ClusterOptions>(options =>
    {
        options.ClusterId = orleans["ClusterId"] ?? "billing";
        options.ServiceId = orleans["ServiceId"] ?? "billing";
    });
    silo.ConfigureEndpoints(IPAddress.Loopback, orleans.GetValue("SiloPort", 11211), orleans.GetValue("GatewayPort", 30100), listenOnAnyHostAddress: false);
    // The same membership timeouts as the billing silos (Silo/Hosting/SiloHostingExtensions.cs, FastFailover).
    silo.Configure<ClusterMembershipOptions>(options =>
    {
        options.ProbeTimeout = TimeSpan.FromSeconds(2);
        options.NumMissedProbesLimit = 2;
        options.NumVotesForDeathDeclaration = 2;
        options.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(20);
        options.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);
        options.TableRefreshTimeout = TimeSpan.FromSeconds(5);
    });
    // The dashboard's grain service must run on every silo; its DashboardGrain (the one that answers the
    // dashboard pages, and lists the grain classes of the silo it runs on) stays on the billing silos.
    silo.AddDashboard();
    silo.Configure<GrainTypeOptions>(options =>
        options.Classes.RemoveWhere(type => type.FullName == "Orleans.Dashboard.Implementation.Grains.DashboardGrain"));
});

await builder.Build().RunAsync();
