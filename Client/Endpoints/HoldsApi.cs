using System.Security.Claims;
using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Billing.Client.Endpoints;

/// <summary>Holds: reserve before an expensive call, capture when it ends, or void (API.md, "Holds").</summary>
public static class HoldsApi
{
    public const string HoldIdMember = "holdId";

    public static IEndpointRouteBuilder MapHoldsApi(this IEndpointRouteBuilder app)
    {
        var service = app.MapGroup("/v1").WithTags("Holds").RequireAuthorization(BillingClaims.ServicePolicy);
        service.MapPost("/holds", PlaceHold)
            .WithName("PlaceHold").WithSummary("Reserve what a call can cost at most: the project when it covers the whole amount, else the user.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status402PaymentRequired).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        service.MapPost("/holds/{holdId}/capture", CaptureHold)
            .WithName("CaptureHold").WithSummary("Charge what the call used at the pinned price and release the rest, in one ledger write.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status402PaymentRequired).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        service.MapPost("/holds/{holdId}/void", VoidHold)
            .WithName("VoidHold").WithSummary("Release a hold; voiding a captured hold is a 409.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        service.MapGet("/holds/{holdId}", GetHold)
            .WithName("GetHold").WithSummary("A hold: active, captured, voided or expired.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);

        var reads = app.MapGroup("/v1").WithTags("Holds");
        reads.MapGet("/users/{userId}/holds", ListUserHolds)
            .WithName("ListUserHolds").WithSummary("The holds a user's account pays, newest first (?status=, ?limit=1..500, ?cursor=).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        reads.MapGet("/projects/{projectId}/holds", ListProjectHolds)
            .WithName("ListProjectHolds").WithSummary("The holds a project's account pays, newest first (?status=, ?limit=1..500, ?cursor=).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<Results<Created<HoldResponse>, Ok<HoldResponse>, ProblemHttpResult>> PlaceHold(
        [FromBody] HoldRequestBody body,
        [FromHeader(Name = OperationIds.IdempotencyKeyHeader)] string? idempotencyKey,
        HttpContext http,
        UsageGrains usageGrains)
    {
        Guid? projectId = null;
        if (body.ProjectId is not null)
        {
            if (!RequestInput.Require(body.ProjectId, "projectId", out var project, out var invalidProject)) return invalidProject;
            projectId = project;
        }

        if (!RequestInput.Require(body.UserId, "userId", out var userId, out var invalid)) return invalid;
        if (!RequestInput.Require(body.ModelId, "modelId", out var modelId, out invalid)) return invalid;
        if (!RequestInput.RequireTokens(body.InputTokens, "inputTokens", out var input, out invalid)) return invalid;
        if (!RequestInput.RequireTokens(body.MaxOutputTokens, "maxOutputTokens", out var maxOutput, out invalid)) return invalid;
        if (body.TtlSeconds is < 1 or > HoldRequest.MaxTtlSeconds)
            return ApiProblems.BadRequest($"ttlSeconds must be a whole number from 1 to {HoldRequest.MaxTtlSeconds} (default {HoldRequest.DefaultTtlSeconds}).");
        if (!RequestInput.TryResolveId(body.HoldId, idempotencyKey, HoldIdMember, out var holdId, out invalid)) return invalid;
        OperationIds.Remember(http, HoldIdMember, holdId); // a 503 must still name the id to retry with

        // 201 for the call that placed the hold, 200 for a copy of it (a retry, or one sent at the same time).
        var result = await usageGrains.CallAsync(grain => grain.PlaceHoldOnce(new HoldRequest(holdId, projectId, userId, modelId, input, maxOutput, body.TtlSeconds)), retryUnanswered: true);
        if (result.Problem is { } problem) return ApiProblems.Problem(problem);
        var hold = HoldResponse.From(result.Value!.Hold);
        return result.Value.Created ? TypedResults.Created($"/v1/holds/{holdId}", hold) : TypedResults.Ok(hold);
    }

    private static async Task<Results<Ok<HoldCaptureResponse>, ProblemHttpResult>> CaptureHold(
        string holdId,
        [FromBody] HoldCaptureBody body,
        [FromHeader(Name = OperationIds.IdempotencyKeyHeader)] string? idempotencyKey,
        HttpContext http,
        UsageGrains usage)
    {
        if (!RequestInput.TryParseId(holdId, "holdId", out var hold, out var invalid)) return invalid;
        if (!RequestInput.RequireTokens(body.InputTokens, "inputTokens", out var input, out invalid)) return invalid;
        if (!RequestInput.RequireTokens(body.OutputTokens, "outputTokens", out var output, out invalid)) return invalid;
        Guid? usageId = null;
        if (body.UsageId is not null || idempotencyKey is not null)
        {
            if (!RequestInput.TryResolveId(body.UsageId, idempotencyKey, OperationIds.UsageId, out var resolved, out invalid)) return invalid;
            usageId = resolved;
        }

        OperationIds.Remember(http, OperationIds.UsageId, usageId ?? hold); // without a usage id, the hold id is the capture's
        var result = await usage.CallAsync(grain => grain.CaptureHold(new HoldCapture(hold, input, output, usageId)), retryUnanswered: true);
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(HoldCaptureResponse.From(result.Value!));
    }

    private static async Task<Results<Ok<HoldResponse>, ProblemHttpResult>> VoidHold(string holdId, UsageGrains usage)
    {
        if (!RequestInput.TryParseId(holdId, "holdId", out var hold, out var invalid)) return invalid;
        var result = await usage.CallAsync(grain => grain.VoidHold(hold), retryUnanswered: true);
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(HoldResponse.From(result.Value!));
    }

    private static async Task<Results<Ok<HoldResponse>, ProblemHttpResult>> GetHold(string holdId, UsageGrains usage)
    {
        if (!RequestInput.TryParseId(holdId, "holdId", out var hold, out var invalid)) return invalid;
        var result = await usage.CallAsync(grain => grain.GetHold(hold), retryUnanswered: true);
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(HoldResponse.From(result.Value!));
    }

    private static Task<Results<Ok<HoldPageResponse>, ProblemHttpResult>> ListUserHolds(
        string userId, string? status, string? limit, string? cursor, ClaimsPrincipal caller, IClusterClient cluster) =>
        ListHolds(AccountKind.User, userId, "userId", status, limit, cursor, caller, cluster);

    private static Task<Results<Ok<HoldPageResponse>, ProblemHttpResult>> ListProjectHolds(
        string projectId, string? status, string? limit, string? cursor, ClaimsPrincipal caller, IClusterClient cluster) =>
        ListHolds(AccountKind.Project, projectId, "projectId", status, limit, cursor, caller, cluster);

    private static async Task<Results<Ok<HoldPageResponse>, ProblemHttpResult>> ListHolds(
        AccountKind kind, string rawId, string name, string? status, string? limit, string? cursor, ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(rawId, name, out var id, out var invalid)) return invalid;
        if (!RequestInput.TryParseListQuery<HoldStatus>(status, limit, cursor, out var list, out invalid)) return invalid;
        if (await Access.ReadableAccountAsync(kind, id, caller, cluster) is not { } account) return ApiProblems.Forbidden(Access.NotYours);
        var result = await account.ListHolds(new HoldQuery(list.Status, list.Limit, list.Before));
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(HoldPageResponse.From(result.Value!));
    }
}
