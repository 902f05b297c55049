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
    /// The Orleans silo: membership on PostgreSQL (ADO.NET clustering), endpoints on every address advertising
    /// Orleans:AdvertisedIPAddress, membership timeouts for fast fail-over, the billing grains and the dashboard.
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
            if (AdvertisedAddress(silo, builder.Environment) is { } advertised)
                orleans.ConfigureEndpoints(advertised, silo.SiloPort, silo.GatewayPort, silo.ListenOnAnyHostAddress);
            else
                orleans.ConfigureEndpoints(silo.SiloPort, silo.GatewayPort, listenOnAnyHostAddress: silo.ListenOnAnyHostAddress);
            orleans.Services.AddOptions<ClusterMembershipOptions>()
                .Configure(FastFailover)
                .BindConfiguration($"{SiloClusterOptions.SectionName}:Membership");
            orleans.Services.AddOptions<GrainCollectionOptions>()
                .Configure(BoundedActivations)
                .BindConfiguration($"{SiloClusterOptions.SectionName}:GrainCollection");
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

    /// <summary>
    /// Memory stays bounded when most accounts are idle: an account's grain leaves memory after
    /// <see cref="GrainCollectionOptions.CollectionAge"/> without calls (its state is in PostgreSQL; the next call
    /// reloads it), and under memory pressure Orleans deactivates the least recently used grains first, from 80% of the
    /// host's (or container's) memory down to 70%. Overridable under Orleans:GrainCollection (README, "Deploying").
    /// </summary>
    public static void BoundedActivations(GrainCollectionOptions options)
    {
        options.CollectionAge = TimeSpan.FromMinutes(10);
        options.EnableActivationSheddingOnMemoryPressure = true;
        options.MemoryUsageLimitPercentage = 80;
        options.MemoryUsageTargetPercentage = 70;
    }

    /// <summary>
    /// Orleans:AdvertisedIPAddress (an address, or a host name resolved now); unset: loopback in Development, else null
    /// (Orleans resolves the host's own address).
    /// </summary>
    public static IPAddress? AdvertisedAddress(SiloClusterOptions silo, IHostEnvironment environment)
    {
        if (string.IsNullOrWhiteSpace(silo.AdvertisedIPAddress)) return environment.IsDevelopment() ? IPAddress.Loopback : null;
        if (IPAddress.TryParse(silo.AdvertisedIPAddress, out var address)) return address;
        return Dns.GetHostAddresses(silo.AdvertisedIPAddress).FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
               ?? throw new StartupConfigurationException($"Orleans:AdvertisedIPAddress '{silo.AdvertisedIPAddress}' resolves to no IPv4 address.");
    }

    /// <summary>
    /// <c>ConnectionStrings:Billing</c>, required: only appsettings.Development.json has a default (the local
    /// PostgreSQL of ./run.sh), so a production silo never falls back to a password-less superuser.
    /// </summary>
    public static string GetBillingConnectionString(this IHostApplicationBuilder builder) =>
        builder.Configuration.GetConnectionString(ConnectionStringName) is { Length: > 0 } cs
            ? cs
            : throw new StartupConfigurationException(
                "ConnectionStrings:Billing is not set. Set it in configuration or as the environment variable ConnectionStrings__Billing " +
                "(only the Development environment has a default).");

    /// <summary>
    /// The web app's URLs unless given (--urls, ASPNETCORE_URLS): health on Silo:DashboardPort (the legacy key
    /// Orleans:DashboardPort still works) and, when configured, the dashboard on Silo:Dashboard:Port. On 127.0.0.1 in
    /// Development, on every address elsewhere (an orchestrator probes health from outside the host).
    /// </summary>
    public static WebApplicationBuilder UseDashboardUrl(this WebApplicationBuilder builder)
    {
        if (string.IsNullOrWhiteSpace(builder.Configuration[WebHostDefaults.ServerUrlsKey]) &&
            string.IsNullOrWhiteSpace(builder.Configuration["http_ports"]) &&
            string.IsNullOrWhiteSpace(builder.Configuration["https_ports"]))
        {
            var web = SiloWebOptions.From(builder.Configuration);
            var host = builder.Environment.IsDevelopment() ? "127.0.0.1" : "*";
            var urls = new List<string> { $"http://{host}:{web.DashboardPort}" };
            if (DashboardSetup.Options(builder.Configuration).Port is { } dashboardPort && dashboardPort != web.DashboardPort)
                urls.Add($"http://{host}:{dashboardPort}");
            builder.WebHost.UseUrls(urls.ToArray());
        }

        return builder;
    }

    /// <summary>
    /// Applies <c>sql/</c> before the host starts when Billing:ApplySchema is true, else checks that it is complete.
    /// False (logged) when the database cannot be reached, refuses the schema or lacks part of it: the silo must not start.
    /// </summary>
    public static async Task<bool> ApplyBillingSchemaAsync(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BillingHostOptions>>().Value;
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Billing.Schema");
        var connectionString = app.Configuration.GetConnectionString(ConnectionStringName)!;
        var target = new NpgsqlConnectionStringBuilder(connectionString);
        try
        {
            if (options.ApplySchema)
            {
                await SchemaMigrator.ApplyAsync(connectionString, logger, app.Lifetime.ApplicationStopping);
                return true;
            }

            // The schema is the migrate verb's job; a silo on a schema that lacks a file would fail its first calls.
            var pending = await SchemaMigrator.PendingAsync(connectionString, app.Lifetime.ApplicationStopping);
            if (pending.Count == 0)
            {
                logger.LogInformation("Schema is complete ({TotalCount} files); Billing:ApplySchema is false", SchemaMigrator.Files.Count);
                return true;
            }

            logger.LogCritical(
                "Database {Database} on {Host}:{Port} lacks {PendingCount} schema file(s), first {SchemaFile}: run `dotnet Billing.Silo.dll migrate` first (or set Billing:ApplySchema=true)",
                target.Database, target.Host, target.Port, pending.Count, pending[0]);
            return false;
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
        {
            logger.LogCritical(exception, "Cannot apply the schema to database {Database} on {Host}:{Port}: {Reason}",
                target.Database, target.Host, target.Port, exception.Message);
            return false;
        }
    }
}
