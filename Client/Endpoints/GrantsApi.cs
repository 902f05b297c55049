using System.Security.Claims;
using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Billing.Client.Endpoints;

/// <summary>Credit grants (API.md "Credit grants"): give (admin), void (admin), list (service, or a user for their own accounts).</summary>
public static class GrantsApi
{
    public static IEndpointRouteBuilder MapGrantsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("Grants");
        group.MapPost("/users/{userId}/grants", GrantUser).RequireAuthorization(BillingClaims.AdminPolicy)
            .WithName("GrantUser").WithSummary("Give a user's account a grant (idempotent by grantId).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/projects/{projectId}/grants", GrantProject).RequireAuthorization(BillingClaims.AdminPolicy)
            .WithName("GrantProject").WithSummary("Give a project's account a grant (idempotent by grantId).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/grants/{grantId}/void", Void).RequireAuthorization(BillingClaims.AdminPolicy)
            .WithName("VoidGrant").WithSummary("Take back what is left of a grant (idempotent).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/users/{userId}/grants", ListUser)
            .WithName("ListUserGrants").WithSummary("A user's grants, newest first (?status=, ?limit=1..500, ?cursor=).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/projects/{projectId}/grants", ListProject)
            .WithName("ListProjectGrants").WithSummary("A project's grants, newest first (?status=, ?limit=1..500, ?cursor=).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static Task<Results<Created<GrantResponse>, Ok<GrantResponse>, ProblemHttpResult>> GrantUser(
        string userId, [FromBody] GrantRequest body, [FromHeader(Name = OperationIds.IdempotencyKeyHeader)] string? idempotencyKey,
        HttpContext http, IClusterClient cluster) =>
        Grant(userId, "userId", "users", body, idempotencyKey, http, id => cluster.GetGrain<IUserGrain>(id));

    private static Task<Results<Created<GrantResponse>, Ok<GrantResponse>, ProblemHttpResult>> GrantProject(
        string projectId, [FromBody] GrantRequest body, [FromHeader(Name = OperationIds.IdempotencyKeyHeader)] string? idempotencyKey,
        HttpContext http, IClusterClient cluster) =>
        Grant(projectId, "projectId", "projects", body, idempotencyKey, http, id => cluster.GetGrain<IProjectGrain>(id));

    private static async Task<Results<Created<GrantResponse>, Ok<GrantResponse>, ProblemHttpResult>> Grant(
        string rawId, string name, string collection, GrantRequest? body, string? idempotencyKey, HttpContext http, Func<Guid, IAccountGrain> grain)
    {
        if (!RequestInput.TryParseId(rawId, name, out var id, out var invalid)) return invalid;
        if (body is null) return ApiProblems.MissingBody();
        if (body.Amount is not { } amount) return ApiProblems.BadRequest("amount is required.");
        if (amount <= 0) return ApiProblems.BadRequest("amount must be above zero.");
        if (body.Category is null) return ApiProblems.BadRequest("category is required.");
        if (!GrantNames.TryCategory(body.Category, out var category)) return ApiProblems.BadRequest("category must be promotional or paid.");
        var priority = body.Priority ?? GrantDefaults.Priority;
        if (priority is < 0 or > 100) return ApiProblems.BadRequest("priority must be a whole number from 0 to 100.");
        // Against now (no effectiveAt) the account decides: a retry of a grant that has expired since is answered.
        if (body.ExpiresAt is { } expiry && body.EffectiveAt is { } effectiveAt && expiry <= effectiveAt)
            return ApiProblems.BadRequest("expiresAt must be after effectiveAt (after now when effectiveAt is not given).");
        if (!RequestInput.TryResolveId(body.GrantId, idempotencyKey, GrantIdMember, out var grantId, out invalid)) return invalid;
        OperationIds.Remember(http, GrantIdMember, grantId);

        var result = await grain(id).Grant(new GrantInput(grantId, amount, category, priority, body.EffectiveAt, body.ExpiresAt, body.Description));
        if (result.Problem is { } problem) return ApiProblems.Problem(problem);
        var grant = GrantResponse.From(result.Value!.Grant);
        return result.Value.Created ? TypedResults.Created($"/v1/{collection}/{id}/grants", grant) : TypedResults.Ok(grant);
    }

    private const string GrantIdMember = "grantId";

    private static async Task<Results<Ok<GrantResponse>, ProblemHttpResult>> Void(string grantId, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(grantId, "grantId", out var id, out var invalid)) return invalid;
        var result = await cluster.GetGrain<IGrantsGrain>(0).Void(id);
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(GrantResponse.From(result.Value!));
    }

    private static Task<Results<Ok<GrantPageResponse>, ProblemHttpResult>> ListUser(
        string userId, string? status, string? limit, string? cursor, ClaimsPrincipal caller, IClusterClient cluster) =>
        List(AccountKind.User, userId, "userId", status, limit, cursor, caller, cluster);

    private static Task<Results<Ok<GrantPageResponse>, ProblemHttpResult>> ListProject(
        string projectId, string? status, string? limit, string? cursor, ClaimsPrincipal caller, IClusterClient cluster) =>
        List(AccountKind.Project, projectId, "projectId", status, limit, cursor, caller, cluster);

    private static async Task<Results<Ok<GrantPageResponse>, ProblemHttpResult>> List(
        AccountKind kind, string rawId, string name, string? status, string? limit, string? cursor, ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(rawId, name, out var id, out var invalid)) return invalid;
        if (!RequestInput.TryParseListQuery<GrantStatus>(status, limit, cursor, out var list, out invalid)) return invalid;
        if (await Access.ReadableAccountAsync(kind, id, caller, cluster) is not { } account) return ApiProblems.Forbidden(Access.NotYours);
        var result = await account.GetGrants(new GrantQuery(list.Status, list.Limit, list.Before));
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(GrantPageResponse.From(result.Value!));
    }
}
