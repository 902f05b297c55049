using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Billing.Client.Endpoints;

/// <summary>Health: <c>/health/live</c> (the process answers) and <c>/health/ready</c> (cluster and database answer). No token.</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/health").WithTags("Health").AllowAnonymous();
        group.MapGet("/live", () => TypedResults.Ok(new HealthResponse("live")))
            .WithName("Live").WithSummary("200 while the gateway process runs.");
        group.MapGet("/ready", Ready)
            .WithName("Ready").WithSummary("200 when the Orleans cluster answers and its billing database is reachable; 503 otherwise.")
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    private static async Task<Results<Ok<HealthResponse>, ProblemHttpResult>> Ready(HealthCheckService health, CancellationToken cancellationToken)
    {
        var report = await health.CheckHealthAsync(check => check.Tags.Contains(HealthSetup.ReadyTag), cancellationToken);
        if (report.Status == HealthStatus.Healthy) return TypedResults.Ok(new HealthResponse("ready"));
        return TypedResults.Problem(
            detail: "The billing cluster or its database is not reachable.",
            statusCode: StatusCodes.Status503ServiceUnavailable,
            title: "Not ready");
    }
}
