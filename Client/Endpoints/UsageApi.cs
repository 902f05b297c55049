using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Billing.Client.Endpoints;

/// <summary>Usage: charge AI usage (project with user fallback, or personal) and balance checks.</summary>
public static class UsageApi
{
    public const string IdempotencyKeyHeader = OperationIds.IdempotencyKeyHeader;

    public static IEndpointRouteBuilder MapUsageApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("Usage").RequireAuthorization(BillingClaims.ServicePolicy);
        group.MapPost("/usage", RecordUsage)
            .WithName("RecordUsage").WithSummary("Record AI usage in a project: paid by the project, else by the user's personal account.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status402PaymentRequired)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapPost("/users/{userId}/usage", RecordPersonalUsage)
            .WithName("RecordPersonalUsage").WithSummary("Record personal AI usage, paid only by the user's account.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status402PaymentRequired)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapPost("/balance-checks", CheckBalance)
            .WithName("CheckBalance").WithSummary("Would this call be payable now? True only when one account alone can pay.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        return app;
    }

    private static async Task<Results<Ok<UsageResponse>, ProblemHttpResult>> RecordUsage(
        [FromBody] AiUsageRequest body,
        [FromHeader(Name = IdempotencyKeyHeader)] string? idempotencyKey,
        HttpContext http,
        UsageGrains usage)
    {
        if (!RequestInput.Require(body.ProjectId, "projectId", out var projectId, out var invalid)) return invalid;
        if (!RequestInput.Require(body.UserId, "userId", out var userId, out invalid)) return invalid;
        if (!RequestInput.Require(body.ModelId, "modelId", out var modelId, out invalid)) return invalid;
        if (!RequestInput.RequireTokens(body.InputTokens, "inputTokens", out var input, out invalid)) return invalid;
        if (!RequestInput.RequireTokens(body.OutputTokens, "outputTokens", out var output, out invalid)) return invalid;
        if (!RequestInput.TryResolveId(body.UsageId, idempotencyKey, OperationIds.UsageId, out var usageId, out invalid)) return invalid;
        OperationIds.Remember(http, OperationIds.UsageId, usageId); // a 503 must still name the id to retry with

        var result = await usage.CallAsync(grain => grain.RecordAiUsage(new AiUsage(usageId, projectId, userId, modelId, input, output)), retryUnanswered: true);
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(UsageResponse.From(result.Value!));
    }

    private static async Task<Results<Ok<UsageResponse>, ProblemHttpResult>> RecordPersonalUsage(
        string userId,
        [FromBody] PersonalUsageRequest body,
        [FromHeader(Name = IdempotencyKeyHeader)] string? idempotencyKey,
        HttpContext http,
        UsageGrains usage)
    {
        if (!RequestInput.TryParseId(userId, "userId", out var user, out var invalid)) return invalid;
        if (!RequestInput.Require(body.ModelId, "modelId", out var modelId, out invalid)) return invalid;
        if (!RequestInput.RequireTokens(body.InputTokens, "inputTokens", out var input, out invalid)) return invalid;
        if (!RequestInput.RequireTokens(body.OutputTokens, "outputTokens", out var output, out invalid)) return invalid;
        if (!RequestInput.TryResolveId(body.UsageId, idempotencyKey, OperationIds.UsageId, out var usageId, out invalid)) return invalid;
        OperationIds.Remember(http, OperationIds.UsageId, usageId); // a 503 must still name the id to retry with

        var result = await usage.CallAsync(grain => grain.RecordPersonalUsage(new PersonalUsage(usageId, user, modelId, input, output)), retryUnanswered: true);
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(UsageResponse.From(result.Value!));
    }

    private static async Task<Results<Ok<BalanceCheckResponse>, ProblemHttpResult>> CheckBalance([FromBody] BalanceCheckRequest body, UsageGrains usage)
    {
        Guid? projectId = null;
        if (body.ProjectId is not null)
        {
            if (!RequestInput.Require(body.ProjectId, "projectId", out var project, out var invalidProject)) return invalidProject;
            projectId = project;
        }

        if (!RequestInput.Require(body.UserId, "userId", out var userId, out var invalid)) return invalid;
        if (!RequestInput.Require(body.ModelId, "modelId", out var modelId, out invalid)) return invalid;
        if (!RequestInput.RequireTokens(body.EstimatedInputTokens, "estimatedInputTokens", out var input, out invalid)) return invalid;
        if (!RequestInput.RequireTokens(body.EstimatedOutputTokens, "estimatedOutputTokens", out var output, out invalid)) return invalid;

        var result = await usage.CallAsync(grain => grain.CheckBalance(new BalanceCheck(projectId, userId, modelId, input, output)), retryUnanswered: true);
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(BalanceCheckResponse.From(result.Value!));
    }
}
