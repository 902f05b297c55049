using System.Security.Claims;
using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Billing.Client.Endpoints;

/// <summary>History: the ledger of an account, newest first, paged by cursor.</summary>
public static class HistoryApi
{
    public static IEndpointRouteBuilder MapHistoryApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("History");
        group.MapGet("/users/{userId}/history", GetUserHistory)
            .WithName("GetUserHistory").WithSummary("A user's history, newest first (?limit=1..500, ?cursor=).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/projects/{projectId}/history", GetProjectHistory)
            .WithName("GetProjectHistory").WithSummary("A project's history, newest first (?limit=1..500, ?cursor=).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<Results<Ok<HistoryPageResponse>, ProblemHttpResult>> GetUserHistory(
        string userId, string? limit, string? cursor, ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(userId, "userId", out var id, out var invalid)) return invalid;
        if (!RequestInput.TryParseLimit(limit, out var size, out invalid)) return invalid;
        if (!RequestInput.TryParseCursor(cursor, out var before, out invalid)) return invalid;
        if (!Access.MayReadUser(caller, id)) return ApiProblems.Forbidden(Access.NotYours);
        var result = await cluster.GetGrain<IUserGrain>(id).GetHistory(new HistoryQuery(size, before));
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(HistoryPageResponse.From(result.Value!));
    }

    private static async Task<Results<Ok<HistoryPageResponse>, ProblemHttpResult>> GetProjectHistory(
        string projectId, string? limit, string? cursor, ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(projectId, "projectId", out var id, out var invalid)) return invalid;
        if (!RequestInput.TryParseLimit(limit, out var size, out invalid)) return invalid;
        if (!RequestInput.TryParseCursor(cursor, out var before, out invalid)) return invalid;
        var grain = cluster.GetGrain<IProjectGrain>(id);
        if (!await Access.MayReadProjectAsync(caller, grain)) return ApiProblems.Forbidden(Access.NotYours);

        var result = await grain.GetHistory(new HistoryQuery(size, before));
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(HistoryPageResponse.From(result.Value!));
    }
}
