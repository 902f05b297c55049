using Billing.Hosting;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;

namespace Billing.Silo.Hosting;

/// <summary>
/// The Orleans Dashboard apart from health: on its own port (Silo:Dashboard:Port) when one is set, behind HTTP Basic
/// credentials (Silo:Dashboard:Username/Password) when configured, so that exposing /health to an orchestrator never
/// exposes the dashboard. Without a port of its own it shares the health port in Development only.
/// </summary>
public static class DashboardSetup
{
    public const string PolicyName = "dashboard";
    public const string SchemeName = "DashboardBasic";

    public static SiloDashboardOptions Options(IConfiguration configuration) =>
        configuration.GetSection(SiloDashboardOptions.SectionName).Get<SiloDashboardOptions>() ?? new SiloDashboardOptions();

    public static WebApplicationBuilder AddBillingDashboardAccess(this WebApplicationBuilder builder)
    {
        var dashboard = Options(builder.Configuration);
        if (!builder.Environment.IsDevelopment() && dashboard.Port is not null && !dashboard.RequiresCredentials && !dashboard.AllowAnonymous)
        {
            throw new StartupConfigurationException(
                "Silo:Dashboard:Port is set outside Development without credentials: set Silo:Dashboard:Username and Silo:Dashboard:Password " +
                "(or Silo:Dashboard:AllowAnonymous=true when the port is reachable from a private network only).");
        }

        if (dashboard.Port is { } port && port == SiloWebOptions.From(builder.Configuration).DashboardPort)
            throw new StartupConfigurationException($"Silo:Dashboard:Port ({port}) must differ from the health port Silo:DashboardPort.");

        builder.Services.AddOptions<SiloDashboardOptions>().BindConfiguration(SiloDashboardOptions.SectionName);
        builder.Services.AddAuthentication().AddScheme<AuthenticationSchemeOptions, BasicCredentialsHandler>(SchemeName, null);
        builder.Services.AddAuthorizationBuilder().AddPolicy(PolicyName, policy =>
        {
            if (dashboard.RequiresCredentials) policy.AddAuthenticationSchemes(SchemeName).RequireAuthenticatedUser();
            else policy.RequireAssertion(_ => true);
        });
        return builder;
    }

    /// <summary>
    /// Maps the dashboard (behind the policy) and keeps each port to its own endpoints: on the dashboard's port only the
    /// dashboard answers, on the health port never the dashboard (404, whatever Host header is sent).
    /// </summary>
    public static WebApplication MapBillingDashboard(this WebApplication app)
    {
        var dashboard = Options(app.Configuration);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Billing.Dashboard");
        if (dashboard.Port is null && !app.Environment.IsDevelopment())
        {
            logger.LogInformation("The Orleans Dashboard is not served: set Silo:Dashboard:Port (and its credentials) to serve it");
            return app;
        }

        if (dashboard.Port is { } port)
        {
            // Before authentication: a request on the wrong port is a 404, never a credentials prompt.
            app.UseRouting();
            app.Use((context, next) =>
            {
                var onDashboardPort = context.Connection.LocalPort == port;
                var isDashboard = context.GetEndpoint()?.Metadata.GetMetadata<DashboardEndpoint>() is not null;
                if (onDashboardPort == isDashboard) return next(context);
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            });
            app.UseAuthentication();
            app.UseAuthorization();
            logger.LogInformation("The Orleans Dashboard is served on port {DashboardPort} ({Access})", port,
                dashboard.RequiresCredentials ? "with credentials" : "without credentials");
        }

        app.MapOrleansDashboard().WithMetadata(new DashboardEndpoint()).RequireAuthorization(PolicyName);
        return app;
    }

    /// <summary>Marks the dashboard's endpoints, so the port filter knows them.</summary>
    private sealed class DashboardEndpoint;

    /// <summary>HTTP Basic against Silo:Dashboard:Username/Password, compared in constant time.</summary>
    private sealed class BasicCredentialsHandler(
        IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IOptions<SiloDashboardOptions> dashboard)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (!AuthenticationHeaderValue.TryParse(Request.Headers.Authorization, out var header) ||
                !string.Equals(header.Scheme, "Basic", StringComparison.OrdinalIgnoreCase) || header.Parameter is null)
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            string credentials;
            try
            {
                credentials = Encoding.UTF8.GetString(Convert.FromBase64String(header.Parameter));
            }
            catch (FormatException)
            {
                return Task.FromResult(AuthenticateResult.Fail("Malformed Basic credentials."));
            }

            var separator = credentials.IndexOf(':');
            var expected = dashboard.Value;
            if (separator < 0 || !SameText(credentials[..separator], expected.Username) || !SameText(credentials[(separator + 1)..], expected.Password))
                return Task.FromResult(AuthenticateResult.Fail("Wrong dashboard credentials."));

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, expected.Username!)], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
        }

        protected override Task HandleChallengeAsync(AuthenticationProperties properties)
        {
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            Response.Headers.WWWAuthenticate = "Basic realm=\"Orleans Dashboard\", charset=\"UTF-8\"";
            return Task.CompletedTask;
        }

        private static bool SameText(string given, string? expected) =>
            expected is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(expected));
    }
}
