using Billing.Hosting;
using Billing.Silo.Hosting;
using Microsoft.Extensions.Options;

// The billing silo: one process of the Orleans cluster, hosting the billing grains.
// Configuration (appsettings.json, environment, command line): ConnectionStrings:Billing, Orleans:ClusterId,
// Orleans:ServiceId, Orleans:SiloPort, Orleans:GatewayPort, Orleans:AdvertisedIPAddress, Orleans:Membership:*,
// Silo:DashboardPort (health; formerly Orleans:DashboardPort, still read), Silo:Dashboard:*, Billing:ApplySchema,
// Metrics:*, Tracing:*. See README.md, "Running it" and "Deploying".
// `dotnet Billing.Silo.dll migrate` applies the schema and exits instead.
if (MigrateCommand.IsMigrate(args)) return await MigrateCommand.RunAsync(args);

try
{
    return await RunSiloAsync(args);
}
catch (Exception exception) when (StartupConfigurationException.Messages(exception) is { } messages)
{
    // A setting that cannot work: said in a line each, exit code 1, no stack trace.
    foreach (var message in messages) await Console.Error.WriteLineAsync($"Billing silo not started: {message}");
    return 1;
}

static async Task<int> RunSiloAsync(string[] args)
{
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions
    {
        Args = args,
        // appsettings.json lives beside the dll: found whatever folder the silo is started from.
        ContentRootPath = AppContext.BaseDirectory,
    });

    builder.AddBillingSilo();            // Orleans: PostgreSQL membership, endpoints, billing grains, dashboard
    builder.AddBillingTelemetry();       // structured logs, the Billing meter and traces through OpenTelemetry
    builder.AddBillingHealthChecks();    // live: the process answers; ready: silo active and database reachable
    builder.AddBillingDashboardAccess(); // the dashboard's port and credentials (Silo:Dashboard)
    builder.UseDashboardUrl();           // health on Silo:DashboardPort, the dashboard on its own port, unless --urls

    var app = builder.Build();
    // The settings validated now, not inside the host's start, which would log them as a crash first.
    app.Services.GetService<IStartupValidator>()?.Validate();
    app.LogRuntimeSettings();            // the GC settings of silo.env, as the process got them

    app.MapBillingHealthChecks();        // /health/live, /health/ready
    app.MapBillingDashboard();           // the Orleans Dashboard at / (its own port when configured)

    // sql/ before the silo joins the cluster (Billing:ApplySchema), else a check that it is complete; no silo without it.
    if (!await app.ApplyBillingSchemaAsync())
    {
        await app.DisposeAsync(); // flushes the logs
        return 1;
    }

    await app.RunAsync();
    return 0;
}
