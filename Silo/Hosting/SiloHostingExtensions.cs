using System.Net;
using Billing.Hosting;
using Billing.Storage;
using Npgsql;
using Orleans.Configuration;
using Orleans.Dashboard;

namespace Billing.Silo.Hosting;

public static class SiloHostingExtensions
{
    public const string ConnectionStringName = "Billing";

    /// <summary>
    /// The Orleans silo: membership on PostgreSQL (ADO.NET clustering), endpoints on the loopback address,
    /// membership timeouts for fast fail-over, the billing grains and the dashboard.
    /// </summary>
    public static WebApplicationBuilder AddBillingSilo(this WebApplicationBuilder builder)
    {
        var connectionString = builder.GetBillingConnectionString();
        var silo = builder.Configuration.GetSection(SiloClusterOptions.SectionName).Get<SiloClusterOptions>() ?? new SiloClusterOptions();

        builder.Services.AddOptions<SiloClusterOptions>().BindConfiguration(SiloClusterOptions.SectionName);
        builder.Services.AddOptions<SiloWebOptions>().Configure<IConfiguration>(SiloWebOptions.Bind);
        builder.Services.AddOptions<BillingHostOptions>().BindConfiguration(BillingHostOptions.SectionName);

        builder.UseOrleans(orleans =>
        {
            orleans.UseAdoNetClustering(options =>
            {
                options.Invariant = "Npgsql";
                options.ConnectionString = connectionString;
            });
            // Orleans itself binds ClusterOptions from the "Orleans" section; this adds our defaults.
            orleans.Configure<ClusterOptions>(options =>
            {
                options.ClusterId = silo.ClusterId;
                options.ServiceId = silo.ServiceId;
            });
            orleans.ConfigureEndpoints(IPAddress.Loopback, silo.SiloPort, silo.GatewayPort, listenOnAnyHostAddress: false);
            orleans.Services.AddOptions<ClusterMembershipOptions>()
                .Configure(FastFailover)
                .BindConfiguration($"{SiloClusterOptions.SectionName}:Membership");
            orleans.AddBillingGrains(connectionString);
            orleans.AddDashboard();
        });
        return builder;
    }

    /// <summary>
    /// Membership for silos on one machine or one LAN: a silo that stops answering (killed, or frozen by a GC pause,
    /// SIGSTOP, a stalled VM) is declared dead in ≈ 4–5 s, so its grains move and the others never wait longer.
    /// <list type="bullet">
    /// <item>Probes every 1–1.5 s (Orleans adapts the timeout between <see cref="ClusterMembershipOptions.MinProbeTimeout"/>
    /// and <see cref="ClusterMembershipOptions.MaxProbeTimeout"/>); suspected after 2 missed probes (the second one
    /// indirect, through another silo).</item>
    /// <item><see cref="ClusterMembershipOptions.MaxProbeTimeout"/> is set explicitly: Orleans suppresses every vote
    /// while the suspect's connection received a message within MaxProbeTimeout × NumMissedProbesLimit ("Suppressing
    /// vote to suspect silo …"), and MaxProbeTimeout defaults to 4 × ProbeTimeout: that window was 16 s, longer than
    /// a 15 s freeze, so a frozen silo was never voted out. Now it is 3 s.</item>
    /// <item>Two votes declare it dead (Orleans asks min(2, ceil(active/2)): one vote in a cluster of two).</item>
    /// </list>
    /// Overridable under Orleans:Membership (e.g. Orleans__Membership__ProbeTimeout=00:00:05).
    /// </summary>
    public static void FastFailover(ClusterMembershipOptions options)
    {
        options.ProbeTimeout = TimeSpan.FromSeconds(1.5);
        options.MinProbeTimeout = TimeSpan.FromSeconds(1);
        options.MaxProbeTimeout = TimeSpan.FromSeconds(1.5);
        options.NumMissedProbesLimit = 2;
        options.NumVotesForDeathDeclaration = 2;
        options.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(20);
        options.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);
        options.TableRefreshTimeout = TimeSpan.FromSeconds(5);
    }

    /// <summary><c>ConnectionStrings:Billing</c>; appsettings.json has the development default (port 5433, database billing).</summary>
    public static string GetBillingConnectionString(this IHostApplicationBuilder builder) =>
        builder.Configuration.GetConnectionString(ConnectionStringName) is { Length: > 0 } cs
            ? cs
            : throw new InvalidOperationException("ConnectionStrings:Billing is not set (environment: ConnectionStrings__Billing).");

    /// <summary>
    /// The dashboard and health endpoints on http://127.0.0.1:{Silo:DashboardPort} (the legacy key Orleans:DashboardPort
    /// still works), unless URLs are given (--urls, ASPNETCORE_URLS).
    /// </summary>
    public static WebApplicationBuilder UseDashboardUrl(this WebApplicationBuilder builder)
    {
        if (string.IsNullOrWhiteSpace(builder.Configuration[WebHostDefaults.ServerUrlsKey]) &&
            string.IsNullOrWhiteSpace(builder.Configuration["http_ports"]) &&
            string.IsNullOrWhiteSpace(builder.Configuration["https_ports"]))
        {
            var web = SiloWebOptions.From(builder.Configuration);
            builder.WebHost.UseUrls($"http://127.0.0.1:{web.DashboardPort}");
        }

        return builder;
    }

    /// <summary>
    /// Applies <c>sql/</c> before the host starts, unless Billing:ApplySchema is false. False (logged) when the
    /// database cannot be reached or refuses the schema: the silo must not start.
    /// </summary>
    public static async Task<bool> ApplyBillingSchemaAsync(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BillingHostOptions>>().Value;
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Billing.Schema");
        if (!options.ApplySchema)
        {
            logger.LogInformation("Billing:ApplySchema is false: not applying the schema");
            return true;
        }

        var connectionString = app.Configuration.GetConnectionString(ConnectionStringName)!;
        var target = new NpgsqlConnectionStringBuilder(connectionString);
        try
        {
            await SchemaMigrator.ApplyAsync(connectionString, logger, app.Lifetime.ApplicationStopping);
            return true;
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
        {
            logger.LogCritical(exception, "Cannot apply the schema to database {Database} on {Host}:{Port}: {Reason}",
                target.Database, target.Host, target.Port, exception.Message);
            return false;
        }
    }
}
