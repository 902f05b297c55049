using System.Security.Claims;
using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Billing.Client.Endpoints;

/// <summary>Accounts: initialise and read user and project accounts.</summary>
public static class AccountsApi
{
    public static IEndpointRouteBuilder MapAccountsApi(this IEndpointRouteBuilder app)
    {
        var users = app.MapGroup("/v1/users/{userId}/billing").WithTags("Accounts");
        users.MapPost("", InitializeUser).RequireAuthorization(BillingClaims.ServicePolicy)
            .WithName("InitializeUserAccount").WithSummary("Initialise a user's personal account (10.0000 USD signup credit).")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        users.MapGet("", GetUser)
            .WithName("GetUserAccount").WithSummary("A user's personal account.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);

        var projects = app.MapGroup("/v1/projects/{projectId}/billing").WithTags("Accounts");
        projects.MapPost("", InitializeProject).RequireAuthorization(BillingClaims.ServicePolicy)
            .WithName("InitializeProjectAccount").WithSummary("Initialise a project account (20.0000 USD for its creator's first project).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status409Conflict);
        projects.MapGet("", GetProject)
            .WithName("GetProjectAccount").WithSummary("A project's account.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<Results<Created<AccountResponse>, Ok<AccountResponse>, ProblemHttpResult>> InitializeUser(string userId, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(userId, "userId", out var id, out var invalid)) return invalid;
        var result = await cluster.GetGrain<IUserGrain>(id).Initialize();
        return Initialized(result, $"/v1/users/{id}/billing");
    }

    private static async Task<Results<Created<AccountResponse>, Ok<AccountResponse>, ProblemHttpResult>> InitializeProject(
        string projectId, [FromBody] InitializeProjectRequest body, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(projectId, "projectId", out var id, out var invalid)) return invalid;
        if (!RequestInput.Require(body.CreatorId, "creatorId", out var creatorId, out invalid)) return invalid;
        var result = await cluster.GetGrain<IProjectGrain>(id).Initialize(creatorId);
        return Initialized(result, $"/v1/projects/{id}/billing");
    }

    private static Results<Created<AccountResponse>, Ok<AccountResponse>, ProblemHttpResult> Initialized(BillingResult<AccountInitialized> result, string location)
    {
        if (result.Problem is { } problem) return ApiProblems.Problem(problem);
        var account = AccountResponse.From(result.Value!.Account);
        return result.Value.Created ? TypedResults.Created(location, account) : TypedResults.Ok(account);
    }

    private static async Task<Results<Ok<AccountResponse>, ProblemHttpResult>> GetUser(string userId, ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(userId, "userId", out var id, out var invalid)) return invalid;
        if (!Access.MayReadUser(caller, id)) return ApiProblems.Forbidden(Access.NotYours);
        var result = await cluster.GetGrain<IUserGrain>(id).GetAccount();
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(AccountResponse.From(result.Value!));
    }

    private static async Task<Results<Ok<AccountResponse>, ProblemHttpResult>> GetProject(string projectId, ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(projectId, "projectId", out var id, out var invalid)) return invalid;
        var result = await cluster.GetGrain<IProjectGrain>(id).GetAccount();
        if (result.Problem is { } problem) return caller.IsService() ? ApiProblems.Problem(problem) : ApiProblems.Forbidden(Access.NotYours);
        if (!Access.MayReadProject(caller, result.Value!)) return ApiProblems.Forbidden(Access.NotYours);
        return TypedResults.Ok(AccountResponse.From(result.Value!));
    }
}
