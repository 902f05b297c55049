using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Dashboard;

// An agent silo of the billing cluster. Configuration as the billing silo's: ConnectionStrings:Billing,
// Orleans:ClusterId, Orleans:ServiceId, Orleans:SiloPort (default 11211), Orleans:GatewayPort (default 30100),
// Orleans:AdvertisedIPAddress (default 127.0.0.1; set it on a host of its own).
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
    // The address the other silos reach this one at (Orleans:AdvertisedIPAddress; loopback when unset, for one host).
    var advertised = orleans["AdvertisedIPAddress"] is { Length: > 0 } address ? IPAddress.Parse(address) : IPAddress.Loopback;
    silo.ConfigureEndpoints(advertised, orleans.GetValue("SiloPort", 11211), orleans.GetValue("GatewayPort", 30100),
        listenOnAnyHostAddress: orleans.GetValue("ListenOnAnyHostAddress", !IPAddress.IsLoopback(advertised)));
    // The same membership timeouts as the billing silos (Silo/Hosting/SiloHostingExtensions.cs, FastFailover),
    // MaxProbeTimeout included: left at its 8 s default, this silo's vote would be held back 16 s and a frozen billing
    // silo that needs its vote would not be declared dead in time.
    silo.Configure<ClusterMembershipOptions>(options =>
    {
        options.ProbeTimeout = TimeSpan.FromSeconds(1.5);
        options.MinProbeTimeout = TimeSpan.FromSeconds(1);
        options.MaxProbeTimeout = TimeSpan.FromSeconds(1.5);
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
