using Billing.Silo.Hosting;
using Orleans.Dashboard;

// The billing silo: one process of the Orleans cluster, hosting the billing grains.
// Configuration (appsettings.json, environment, command line): ConnectionStrings:Billing, Orleans:ClusterId,
// Orleans:ServiceId, Orleans:SiloPort, Orleans:GatewayPort, Orleans:Membership:*, Silo:DashboardPort (formerly
// Orleans:DashboardPort, still read), Billing:ApplySchema, Metrics:*. See README.md, "Running it".
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    // appsettings.json lives beside the dll: found whatever folder the silo is started from.
    ContentRootPath = AppContext.BaseDirectory,
});

builder.AddBillingSilo();          // Orleans: PostgreSQL membership, endpoints, billing grains, dashboard
builder.AddBillingTelemetry();     // structured logs, the Billing meter through OpenTelemetry
builder.AddBillingHealthChecks();  // live: the process answers; ready: silo active and database reachable
builder.UseDashboardUrl();         // the web app (dashboard, health) on Silo:DashboardPort unless --urls

var app = builder.Build();

app.MapBillingHealthChecks();      // /health/live, /health/ready
app.MapOrleansDashboard();         // the Orleans Dashboard at /

// sql/, idempotent, before the silo joins the cluster (Billing:ApplySchema); no silo without its schema.
if (!await app.ApplyBillingSchemaAsync())
{
    await app.DisposeAsync(); // flushes the logs
    return 1;
}

await app.RunAsync();
return 0;
