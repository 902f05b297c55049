using Billing.Hosting;
using Billing.Client.Endpoints;
using Billing.Client.Hosting;
using Microsoft.Extensions.Options;

namespace Billing.Client;

/// <summary>
/// The billing gateway: an ASP.NET Core minimal API over an Orleans client (see shared/API.md).
/// <c>token --role admin --sub &lt;uuid&gt;</c> mints a development token instead of starting the server.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (TokenCommand.IsTokenCommand(args)) return TokenCommand.Run(args, Console.Out, Console.Error);

        try
        {
            await using var app = BuildGateway(args);
            // The settings validated now, not inside the host's start, which would log them as a crash first.
            app.Services.GetService<IStartupValidator>()?.Validate();
            await app.RunAsync();
            return 0;
        }
        catch (Exception exception) when (StartupConfigurationException.Messages(exception) is { } messages)
        {
            // A setting that cannot work: said in a line each, exit code 1, no stack trace.
            foreach (var message in messages) await Console.Error.WriteLineAsync($"Billing gateway not started: {message}");
            return 1;
        }
    }

    /// <summary>
    /// Builds the gateway; tests call this with their own configuration as command-line arguments, and may add services
    /// (e.g. an in-memory trace exporter) through <paramref name="configure"/>.
    /// </summary>
    public static WebApplication BuildGateway(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(Options(args));

        builder.AddBillingServerDefaults();   // default URL, request limits, JSON, problem details
        builder.AddBillingClusterClient();    // Orleans client on ADO.NET (PostgreSQL) clustering, trace propagation
        builder.AddBillingAuth();             // JWT bearer (HS256) and the service/admin policies
        builder.AddBillingRateLimiting();     // token buckets per token subject (RateLimit:*), 429 problem+json
        builder.AddBillingTracing();          // OpenTelemetry spans: HTTP → grain calls (Tracing:*)
        builder.AddBillingDrain();            // SIGTERM: stop accepting, finish in-flight (Gateway:DrainTimeoutSeconds)
        builder.AddBillingHealth();           // cluster + database readiness
        builder.AddBillingOpenApi();          // /openapi/v1.json
        configure?.Invoke(builder);

        var app = builder.Build();

        app.UseBillingErrorHandling();        // exceptions and empty error responses become problem+json
        app.UseBillingConsole();              // /console: the browser console's static files (no token needed for the files)
        app.UseAuthentication();
        app.UseBillingRateLimiting();         // after authentication: the subject is known
        app.UseAuthorization();

        app.MapOpenApi().AllowAnonymous();
        app.MapAccountsApi();
        app.MapUsageApi();
        app.MapHoldsApi();
        app.MapHistoryApi();
        app.MapBillingErrorsApi();
        app.MapAdminApi();
        app.MapUsageSummaryApi();
        app.MapAlertsApi();
        app.MapEventsApi();
        app.MapWebhooksApi();
        app.MapGrantsApi();
        app.MapHealthApi();

        return app;
    }

    /// <summary>appsettings*.json are read beside the assembly, wherever the process was started from (unless --contentRoot).</summary>
    internal static WebApplicationOptions Options(string[] args, string? environmentName = null) => new()
    {
        Args = args,
        EnvironmentName = environmentName,
        ContentRootPath = args.Any(a => a.StartsWith("--contentRoot", StringComparison.OrdinalIgnoreCase)) ? null : AppContext.BaseDirectory,
    };
}
