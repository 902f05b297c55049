using Billing.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Billing.Silo.Hosting;

/// <summary>
/// <c>dotnet Billing.Silo.dll migrate</c>: applies <c>sql/</c> to the billing database and exits (0 done, 1 failed),
/// without starting a silo. It connects with <c>ConnectionStrings:BillingMigrations</c> when set (a role that owns the
/// schema), else <c>ConnectionStrings:Billing</c>; with <c>Billing:SiloRole</c> it then grants that role what a silo
/// needs. Same configuration sources as the silo (appsettings, environment, <c>--Key=value</c>).
/// </summary>
public static class MigrateCommand
{
    public const string Verb = "migrate";
    public const string MigrationsConnectionStringName = "BillingMigrations";

    public static bool IsMigrate(string[] args) => args.Length > 0 && string.Equals(args[0], Verb, StringComparison.OrdinalIgnoreCase);

    public static async Task<int> RunAsync(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args[1..], ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddOptions<BillingHostOptions>().BindConfiguration(BillingHostOptions.SectionName);
        await using var app = builder.Build();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Billing.Schema");
        var connectionString = builder.Configuration.GetConnectionString(MigrationsConnectionStringName) is { Length: > 0 } owner
            ? owner
            : builder.Configuration.GetConnectionString(SiloHostingExtensions.ConnectionStringName);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            logger.LogCritical("Neither ConnectionStrings:BillingMigrations nor ConnectionStrings:Billing is set: nothing to migrate");
            return 1;
        }

        var target = new NpgsqlConnectionStringBuilder(connectionString);
        var siloRole = app.Services.GetRequiredService<IOptions<BillingHostOptions>>().Value.SiloRole;
        try
        {
            await SchemaMigrator.ApplyAsync(connectionString, logger);
            if (!string.IsNullOrWhiteSpace(siloRole))
            {
                await SchemaMigrator.GrantRuntimeAccessAsync(connectionString, siloRole);
                logger.LogInformation("Granted role {SiloRole} what a silo needs on database {Database}", siloRole, target.Database);
            }

            return 0;
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
        {
            logger.LogCritical(exception, "Cannot migrate database {Database} on {Host}:{Port} as {User}: {Reason}",
                target.Database, target.Host, target.Port, target.Username, exception.Message);
            return 1;
        }
    }
}
