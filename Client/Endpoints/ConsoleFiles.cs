using Microsoft.Extensions.FileProviders;

namespace Billing.Client.Endpoints;

/// <summary>
/// The browser console at <c>/console</c>: static files copied beside the gateway by the build (Client/Console), no
/// server-side rendering. They are public (the page holds no data); every call it makes is a /v1 call with the
/// person's own token, so the API's checks apply unchanged.
/// </summary>
public static class ConsoleFiles
{
    public const string Path = "/console";

    public static WebApplication UseBillingConsole(this WebApplication app)
    {
        var root = System.IO.Path.Combine(AppContext.BaseDirectory, "console");
        if (!Directory.Exists(root))
        {
            app.Logger.LogWarning("The console's files are missing from {ConsoleRoot}; /console is not served", root);
            return app;
        }

        app.UseWhen(context => context.Request.Path.StartsWithSegments(Path), branch =>
        {
            branch.Use((context, next) =>
            {
                // Scripts and styles come only from the gateway itself; the page talks only to this origin's API.
                context.Response.Headers.ContentSecurityPolicy =
                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";
                context.Response.Headers.XContentTypeOptions = "nosniff";
                context.Response.Headers.CacheControl = "no-cache";
                return next(context);
            });
            branch.UseFileServer(new FileServerOptions { FileProvider = new PhysicalFileProvider(root), RequestPath = Path });
        });
        return app;
    }
}
