using System.Security.Claims;
using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Billing.Client.Endpoints;

/// <summary>Balance alerts: an account's thresholds of available, and those crossed now.</summary>
public static class AlertsApi
{
    public static IEndpointRouteBuilder MapAlertsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("Alerts");
        group.MapPut("/users/{userId}/alerts", PutUser).RequireAuthorization(BillingClaims.ServicePolicy)
            .WithName("SetUserAlerts").WithSummary("Set a user's alert thresholds (up to 10 positive amounts of available).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPut("/projects/{projectId}/alerts", PutProject).RequireAuthorization(BillingClaims.ServicePolicy)
            .WithName("SetProjectAlerts").WithSummary("Set a project's alert thresholds (up to 10 positive amounts of available).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/users/{userId}/alerts", GetUser)
            .WithName("GetUserAlerts").WithSummary("A user's alert thresholds and those crossed now.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/projects/{projectId}/alerts", GetProject)
            .WithName("GetProjectAlerts").WithSummary("A project's alert thresholds and those crossed now.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static Task<Results<Ok<AlertsResponse>, ProblemHttpResult>> PutUser(string userId, [FromBody] AlertsRequest body, IClusterClient cluster) =>
        Put(userId, "userId", body, id => cluster.GetGrain<IUserGrain>(id));

    private static Task<Results<Ok<AlertsResponse>, ProblemHttpResult>> PutProject(string projectId, [FromBody] AlertsRequest body, IClusterClient cluster) =>
        Put(projectId, "projectId", body, id => cluster.GetGrain<IProjectGrain>(id));

    private static async Task<Results<Ok<AlertsResponse>, ProblemHttpResult>> Put(string rawId, string name, AlertsRequest? body, Func<Guid, IAccountGrain> account)
    {
        if (!RequestInput.TryParseId(rawId, name, out var id, out var invalid)) return invalid;
        if (body is null) return ApiProblems.MissingBody();
        if (body.Thresholds is not { } thresholds) return ApiProblems.BadRequest("thresholds is required.");
        if (thresholds.Length > 10) return ApiProblems.BadRequest("At most 10 thresholds.");
        if (thresholds.Any(t => t <= 0)) return ApiProblems.BadRequest("Every threshold must be a positive amount.");
        var result = await account(id).AsReference<IBalanceAlertsGrain>().SetAlerts(thresholds);
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(AlertsResponse.From(result.Value!));
    }

    private static async Task<Results<Ok<AlertsResponse>, ProblemHttpResult>> GetUser(string userId, ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(userId, "userId", out var id, out var invalid)) return invalid;
        if (!Access.MayReadUser(caller, id)) return ApiProblems.Forbidden(Access.NotYours);
        var result = await cluster.GetGrain<IUserGrain>(id).AsReference<IBalanceAlertsGrain>().GetAlerts();
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(AlertsResponse.From(result.Value!));
    }

    private static async Task<Results<Ok<AlertsResponse>, ProblemHttpResult>> GetProject(string projectId, ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(projectId, "projectId", out var id, out var invalid)) return invalid;
        var grain = cluster.GetGrain<IProjectGrain>(id);
        if (!await Access.MayReadProjectAsync(caller, grain)) return ApiProblems.Forbidden(Access.NotYours);

        var result = await grain.AsReference<IBalanceAlertsGrain>().GetAlerts();
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(AlertsResponse.From(result.Value!));
    }
}
