using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Billing.Client.Endpoints;

/// <summary>Admin: model prices, credits (top-ups) and plans. Reading prices needs the service role.</summary>
public static class AdminApi
{
    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var pricing = app.MapGroup("/v1/models/{modelId}/pricing").WithTags("Pricing");
        pricing.MapPut("", AddPrice).RequireAuthorization(BillingClaims.AdminPolicy)
            .WithName("AddModelPrice").WithSummary("Add a price (per million tokens) that takes effect at effectiveFrom (default now).")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        pricing.MapGet("", GetPricing).RequireAuthorization(BillingClaims.ServicePolicy)
            .WithName("GetModelPricing").WithSummary("The price in effect now and the prices scheduled later.")
            .ProducesProblem(StatusCodes.Status400BadRequest);

        var admin = app.MapGroup("/v1").WithTags("Admin").RequireAuthorization(BillingClaims.AdminPolicy);
        admin.MapPost("/users/{userId}/credits", CreditUser)
            .WithName("CreditUser").WithSummary("Top up a user's account (idempotent by creditId); resolves its open insufficient-balance errors.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        admin.MapPost("/projects/{projectId}/credits", CreditProject)
            .WithName("CreditProject").WithSummary("Top up a project's account (idempotent by creditId); resolves its open insufficient-balance errors.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        admin.MapPut("/users/{userId}/plan", ChangeUserPlan)
            .WithName("ChangeUserPlan").WithSummary("Change a user's plan; starts a new quota cycle.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapPut("/projects/{projectId}/plan", ChangeProjectPlan)
            .WithName("ChangeProjectPlan").WithSummary("Change a project's plan; starts a new quota cycle.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<Results<Created<ModelPriceResponse>, ProblemHttpResult>> AddPrice(string modelId, [FromBody] ModelPriceRequest body, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(modelId, "modelId", out var id, out var invalid)) return invalid;
        if (body.InputPricePerMillion is not { } input) return ApiProblems.BadRequest("inputPricePerMillion is required.");
        if (body.OutputPricePerMillion is not { } output) return ApiProblems.BadRequest("outputPricePerMillion is required.");
        if (input < 0 || output < 0) return ApiProblems.BadRequest("Prices must not be negative.");
        if (input == 0 && output == 0) return ApiProblems.BadRequest("At least one of the prices must be above zero.");
        if (!TryCurrency(body.Currency, out var currency, out invalid)) return invalid;

        var result = await cluster.GetGrain<IModelPricingGrain>(id).AddPrice(new ModelPriceInput(input, output, currency, body.EffectiveFrom));
        if (result.Problem is { } problem) return ApiProblems.Problem(problem);
        return TypedResults.Created($"/v1/models/{id}/pricing", ModelPriceResponse.From(result.Value!));
    }

    private static async Task<Results<Ok<ModelPricingResponse>, ProblemHttpResult>> GetPricing(string modelId, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(modelId, "modelId", out var id, out var invalid)) return invalid;
        var pricing = await cluster.GetGrain<IModelPricingGrain>(id).GetPricing();
        return TypedResults.Ok(ModelPricingResponse.From(pricing));
    }

    private static Task<Results<Ok<AccountResponse>, ProblemHttpResult>> CreditUser(
        string userId, [FromBody] CreditRequest body, [FromHeader(Name = OperationIds.IdempotencyKeyHeader)] string? idempotencyKey,
        HttpContext http, IClusterClient cluster) =>
        Credit(userId, "userId", body, idempotencyKey, http, id => cluster.GetGrain<IUserGrain>(id));

    private static Task<Results<Ok<AccountResponse>, ProblemHttpResult>> CreditProject(
        string projectId, [FromBody] CreditRequest body, [FromHeader(Name = OperationIds.IdempotencyKeyHeader)] string? idempotencyKey,
        HttpContext http, IClusterClient cluster) =>
        Credit(projectId, "projectId", body, idempotencyKey, http, id => cluster.GetGrain<IProjectGrain>(id));

    /// <summary>
    /// A top-up is always sent with a credit id (given in the body or the Idempotency-Key header, else generated
    /// here), so a caller that lost the answer can retry it without crediting twice: the id is in the 200 body and,
    /// on a 503, in the problem body and the Idempotency-Key header.
    /// </summary>
    private static async Task<Results<Ok<AccountResponse>, ProblemHttpResult>> Credit(
        string rawId, string name, CreditRequest? body, string? idempotencyKey, HttpContext http, Func<Guid, IAccountGrain> grain)
    {
        if (!RequestInput.TryParseId(rawId, name, out var id, out var invalid)) return invalid;
        if (body is null) return ApiProblems.MissingBody();
        if (body.Amount is not { } amount) return ApiProblems.BadRequest("amount is required.");
        if (amount <= 0) return ApiProblems.BadRequest("amount must be above zero.");
        var reason = body.Reason ?? HistoryReasons.TopUp;
        if (!HistoryReasons.CreditReasons.Contains(reason))
            return ApiProblems.BadRequest($"reason must be one of: {string.Join(", ", HistoryReasons.CreditReasons.Order())}.");
        if (!RequestInput.TryResolveId(body.CreditId, idempotencyKey, OperationIds.CreditId, out var creditId, out invalid)) return invalid;
        OperationIds.Remember(http, OperationIds.CreditId, creditId);

        var result = await grain(id).Credit(new AccountCredit(amount, reason, creditId));
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(AccountResponse.From(result.Value!) with { CreditId = creditId });
    }

    private static Task<Results<Ok<AccountResponse>, ProblemHttpResult>> ChangeUserPlan(string userId, [FromBody] PlanRequest body, IClusterClient cluster) =>
        ChangePlan(userId, "userId", body, id => cluster.GetGrain<IUserGrain>(id));

    private static Task<Results<Ok<AccountResponse>, ProblemHttpResult>> ChangeProjectPlan(string projectId, [FromBody] PlanRequest body, IClusterClient cluster) =>
        ChangePlan(projectId, "projectId", body, id => cluster.GetGrain<IProjectGrain>(id));

    private static async Task<Results<Ok<AccountResponse>, ProblemHttpResult>> ChangePlan(string rawId, string name, PlanRequest? body, Func<Guid, IAccountGrain> grain)
    {
        if (!RequestInput.TryParseId(rawId, name, out var id, out var invalid)) return invalid;
        if (body is null) return ApiProblems.MissingBody();
        if (body.IsPro is not { } isPro) return ApiProblems.BadRequest("isPro is required.");
        if (isPro && body.MonthlyQuota is null) return ApiProblems.BadRequest("monthlyQuota is required for a pro plan.");
        var quota = body.MonthlyQuota ?? 0m;
        if (quota < 0) return ApiProblems.BadRequest("monthlyQuota must not be negative.");

        var result = await grain(id).ChangePlan(new PlanChange(isPro, quota));
        return result.Problem is { } problem ? ApiProblems.Problem(problem) : TypedResults.Ok(AccountResponse.From(result.Value!));
    }

    /// <summary>An ISO 4217 code (three letters), USD when absent.</summary>
    private static bool TryCurrency(string? raw, out string currency, out ProblemHttpResult problem)
    {
        problem = null!;
        currency = raw ?? "USD";
        if (currency.Length == 3 && currency.All(char.IsAsciiLetterUpper)) return true;
        problem = ApiProblems.BadRequest("currency must be an ISO 4217 code of three capital letters, such as USD.");
        return false;
    }
}
