using System.Security.Claims;
using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Billing.Client.Endpoints;

/// <summary>Billing errors: the refusals stored for the front end, and resolving them.</summary>
public static class BillingErrorsApi
{
    public static IEndpointRouteBuilder MapBillingErrorsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/billing-errors").WithTags("Billing errors");
        group.MapGet("", List)
            .WithName("ListBillingErrors").WithSummary("The billing errors of one account (?scope=project|user&scopeId=…&resolved=), newest first.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/{id}/resolve", Resolve).RequireAuthorization(BillingClaims.ServicePolicy)
            .WithName("ResolveBillingError").WithSummary("Mark a billing error resolved.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<Results<Ok<BillingErrorPageResponse>, ProblemHttpResult>> List(
        string? scope, string? scopeId, string? resolved, string? limit, string? cursor, ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (scope is not (BillingScopes.Project or BillingScopes.User)) return ApiProblems.BadRequest("scope must be 'project' or 'user'.");
        if (!RequestInput.TryParseId(scopeId, "scopeId", out var id, out var invalid)) return invalid;
        bool? resolvedFilter = null;
        if (!string.IsNullOrEmpty(resolved))
        {
            if (!bool.TryParse(resolved, out var value)) return ApiProblems.BadRequest("resolved must be true or false.");
            resolvedFilter = value;
        }

        if (!RequestInput.TryParseLimit(limit, out var size, out invalid)) return invalid;
        if (!RequestInput.TryParseCursor(cursor, out var before, out invalid)) return invalid;

        if (!caller.IsService())
        {
            if (scope == BillingScopes.User && !Access.MayReadUser(caller, id)) return ApiProblems.Forbidden(Access.NotYours);
            if (scope == BillingScopes.Project && !await Access.MayReadProjectAsync(caller, cluster.GetGrain<IProjectGrain>(id))) return ApiProblems.Forbidden(Access.NotYours);
        }

        var result = await cluster.GetGrain<IBillingErrorsGrain>(0).List(new BillingErrorQuery(scope, id, resolvedFilter, size, before));
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(BillingErrorPageResponse.From(result.Value!));
    }

    private static async Task<Results<Ok<BillingErrorResponse>, ProblemHttpResult>> Resolve(string id, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(id, "id", out var errorId, out var invalid)) return invalid;
        var result = await cluster.GetGrain<IBillingErrorsGrain>(0).Resolve(errorId);
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(BillingErrorResponse.From(result.Value!));
    }
}
