using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Billing.Client.Hosting;

public static class ServerDefaults
{
    /// <summary>Where the gateway listens in Development when no URL is configured (--urls, ASPNETCORE_URLS, urls).</summary>
    public const string DefaultUrl = "http://127.0.0.1:5080";

    /// <summary>Elsewhere: the same port on every address (behind a load balancer or ingress on another host).</summary>
    public const string DefaultProductionUrl = "http://*:5080";

    /// <summary>Default URL, Kestrel limits, strict camelCase JSON with exact decimals, problem details.</summary>
    public static WebApplicationBuilder AddBillingServerDefaults(this WebApplicationBuilder builder)
    {
        if (string.IsNullOrWhiteSpace(builder.Configuration[WebHostDefaults.ServerUrlsKey]) &&
            string.IsNullOrWhiteSpace(builder.Configuration["http_ports"]) &&
            string.IsNullOrWhiteSpace(builder.Configuration["https_ports"]))
        {
            builder.WebHost.UseUrls(builder.Environment.IsDevelopment() ? DefaultUrl : DefaultProductionUrl);
        }

        builder.Services.AddOptions<HttpApiOptions>()
            .BindConfiguration(HttpApiOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        builder.Services.AddOptions<KestrelServerOptions>()
            .Configure<IOptions<HttpApiOptions>>((kestrel, api) =>
            {
                kestrel.AddServerHeader = false;
                kestrel.Limits.MaxRequestBodySize = api.Value.MaxRequestBodyBytes;
            });

        builder.Services.AddOptions<JsonOptions>()
            .Configure<IOptions<HttpApiOptions>>((json, api) => ConfigureJson(json.SerializerOptions, api.Value.MaxJsonDepth));

        // Minimal APIs throw BadHttpRequestException for unreadable bodies and parameters; the exception
        // handler turns it into a 400 (or 413) problem with a clear detail, in every environment.
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);

        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
        {
            // RFC 9457 wants a type; the framework knows most statuses, not 402 and 413.
            context.ProblemDetails.Type ??= context.ProblemDetails.Status switch
            {
                StatusCodes.Status402PaymentRequired => "https://tools.ietf.org/html/rfc9110#section-15.5.3",
                StatusCodes.Status413PayloadTooLarge => "https://tools.ietf.org/html/rfc9110#section-15.5.14",
                _ => "about:blank",
            };
            // API.md: every problem has a detail, including the ones ASP.NET Core writes itself (401, 403, 404, 405, 413, 415).
            if (string.IsNullOrWhiteSpace(context.ProblemDetails.Detail))
                context.ProblemDetails.Detail = StatusProblems.DetailFor(context.HttpContext, context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode);
            context.ProblemDetails.Instance ??= $"{context.HttpContext.Request.Method} {context.HttpContext.Request.Path}";
            context.ProblemDetails.Extensions.TryAdd("code", StatusProblems.CodeFor(context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode));
            context.ProblemDetails.Extensions.TryAdd("traceId", context.HttpContext.TraceIdentifier);
            OperationIds.AddToRetryable(context);
        });
        ProblemJsonWriter.Register(builder.Services); // problem+json whatever the Accept
        builder.Services.AddExceptionHandler<GatewayExceptionHandler>();
        return builder;
    }

    /// <summary>
    /// camelCase; numbers are numbers (no strings-as-numbers); decimals are read from the JSON text and written
    /// exactly by System.Text.Json, never through double; enums as their lowercase names.
    /// </summary>
    public static void ConfigureJson(JsonSerializerOptions options, int maxDepth)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.DictionaryKeyPolicy = JsonNamingPolicy.CamelCase;
        options.PropertyNameCaseInsensitive = true;
        options.NumberHandling = JsonNumberHandling.Strict;
        options.MaxDepth = maxDepth;
        options.AllowTrailingCommas = false;
        options.ReadCommentHandling = JsonCommentHandling.Disallow;
        options.AllowDuplicateProperties = false;
        // A member the route does not take is refused, not ignored: a misspelt id ("credit_id") would otherwise be
        // dropped, a new id generated, and a retry applied twice.
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false));
        options.TypeInfoResolverChain.Insert(0, Contracts.UsageJsonContext.Default);
    }

    /// <summary>Exceptions and bare error status codes become application/problem+json.</summary>
    public static WebApplication UseBillingErrorHandling(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }
}
