using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Billing.Client.Hosting;

/// <summary>
/// Limits per token subject (configuration section <c>RateLimit</c>): a token bucket per <c>sub</c>, a larger one for
/// service and admin tokens (the platform's back end records every agent's usage with one service token). Off in
/// Development (appsettings.Development.json).
/// </summary>
public sealed class RateLimitOptions
{
    public const string Section = "RateLimit";

    public bool Enabled { get; set; } = true;

    /// <summary>Requests per second a plain user's token may make on average.</summary>
    [Range(1, 1_000_000)]
    public int PermitsPerSecond { get; set; } = 20;

    /// <summary>Requests a plain user's token may make at once before the average applies.</summary>
    [Range(1, 1_000_000)]
    public int Burst { get; set; } = 40;

    /// <summary>
    /// Requests per second of one service or admin token: a guard against a runaway caller, well above what one gateway
    /// serves (≈ 12,000 usages/s in the benchmark), since all of the platform's usage comes with one service token.
    /// </summary>
    [Range(1, 1_000_000)]
    public int ServicePermitsPerSecond { get; set; } = 50_000;

    [Range(1, 1_000_000)]
    public int ServiceBurst { get; set; } = 100_000;
}

public static class RateLimitingSetup
{
    /// <summary>
    /// The ASP.NET Core rate limiter on <c>/v1</c> only (health and OpenAPI are never limited): partitioned by the token's
    /// subject; requests without a valid token are not limited (the route refuses them with 401). A refusal is a
    /// 429 problem+json with <c>Retry-After</c> and <c>code: "rate_limited"</c>; nothing was applied.
    /// </summary>
    public static WebApplicationBuilder AddBillingRateLimiting(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddRateLimiter(_ => { });
        builder.Services.AddOptions<RateLimiterOptions>().Configure<IOptions<RateLimitOptions>>((limiter, configured) =>
        {
            var limits = configured.Value;
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(http => Partition(http, limits));
            limiter.OnRejected = WriteRejectionAsync;
        });
        return builder;
    }

    /// <summary>After authentication (the subject is known), before authorization and the endpoints.</summary>
    public static WebApplication UseBillingRateLimiting(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<RateLimitOptions>>().Value.Enabled) app.UseRateLimiter();
        return app;
    }

    private static RateLimitPartition<string> Partition(HttpContext http, RateLimitOptions limits)
    {
        if (!http.Request.Path.StartsWithSegments("/v1")) return RateLimitPartition.GetNoLimiter("unlimited");
        var user = http.User;
        if (user.Identity?.IsAuthenticated == true && user.FindFirst(BillingClaims.Subject)?.Value is { Length: > 0 } subject)
        {
            return user.IsService()
                ? RateLimitPartition.GetTokenBucketLimiter($"service:{subject}", _ => Bucket(limits.ServicePermitsPerSecond, limits.ServiceBurst))
                : RateLimitPartition.GetTokenBucketLimiter($"user:{subject}", _ => Bucket(limits.PermitsPerSecond, limits.Burst));
        }

        // No valid token: authorization answers 401 before any cluster call, so there is nothing to protect, and behind a
        // load balancer one client address would be every caller's.
        return RateLimitPartition.GetNoLimiter("unauthenticated");
    }

    private static TokenBucketRateLimiterOptions Bucket(int perSecond, int burst) => new()
    {
        TokenLimit = Math.Max(burst, 1),
        TokensPerPeriod = perSecond,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        QueueLimit = 0,
        AutoReplenishment = true,
    };

    private static async ValueTask WriteRejectionAsync(OnRejectedContext context, CancellationToken cancellationToken)
    {
        var http = context.HttpContext;
        var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        var problem = new ProblemDetails
        {
            Status = StatusCodes.Status429TooManyRequests,
            Title = "Too many requests",
            Detail = $"This token has used its request rate; nothing was applied. Retry after {seconds} s.",
            Type = "https://tools.ietf.org/html/rfc6585#section-4",
        };
        problem.Extensions["code"] = "rate_limited";
        var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
        await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem });
    }
}
