using Microsoft.AspNetCore.Http.HttpResults;

namespace Billing.Client.Endpoints;

/// <summary>The problem+json answers of the endpoints: a grain refusal mapped to its status and code, or a refusal of the gateway's own.</summary>
internal static class ApiProblems
{
    /// <summary>The HTTP status of each refusal of the grain contract (API.md, "Status codes for bad input").</summary>
    public static int StatusOf(BillingStatus status) => status switch
    {
        BillingStatus.InvalidInput => StatusCodes.Status400BadRequest,
        BillingStatus.AccountNotFound or BillingStatus.BillingErrorNotFound or BillingStatus.GrantNotFound => StatusCodes.Status404NotFound,
        BillingStatus.NoPriceInEffect or BillingStatus.CurrencyMismatch => StatusCodes.Status422UnprocessableEntity,
        BillingStatus.InsufficientBalance => StatusCodes.Status402PaymentRequired,
        BillingStatus.CreatorConflict or BillingStatus.HoldConflict or BillingStatus.WebhookConflict => StatusCodes.Status409Conflict,
        BillingStatus.HoldNotFound => StatusCodes.Status404NotFound,
        BillingStatus.Overloaded => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    private static string TitleOf(BillingStatus status) => status switch
    {
        BillingStatus.InvalidInput => "Invalid input",
        BillingStatus.AccountNotFound => "Account not found",
        BillingStatus.BillingErrorNotFound => "Billing error not found",
        BillingStatus.NoPriceInEffect => "No price in effect",
        BillingStatus.CurrencyMismatch => "Currency mismatch",
        BillingStatus.InsufficientBalance => "Insufficient balance",
        BillingStatus.CreatorConflict => "Creator conflict",
        BillingStatus.HoldNotFound => "Hold not found",
        BillingStatus.HoldConflict => "Hold conflict",
        BillingStatus.GrantNotFound => "Grant not found",
        BillingStatus.WebhookConflict => "Webhook conflict",
        BillingStatus.Overloaded => "Billing is overloaded",
        _ => "Billing refused the request",
    };

    private static string CodeOf(BillingStatus status) => status switch
    {
        BillingStatus.InvalidInput => "invalid_input",
        BillingStatus.AccountNotFound => "account_not_found",
        BillingStatus.BillingErrorNotFound => "billing_error_not_found",
        BillingStatus.NoPriceInEffect => "no_price_in_effect",
        BillingStatus.CurrencyMismatch => "currency_mismatch",
        BillingStatus.InsufficientBalance => "insufficient_balance",
        BillingStatus.CreatorConflict => "creator_conflict",
        BillingStatus.HoldNotFound => "hold_not_found",
        BillingStatus.HoldConflict => "hold_conflict",
        BillingStatus.GrantNotFound => "grant_not_found",
        BillingStatus.WebhookConflict => "webhook_conflict",
        BillingStatus.Overloaded => "overloaded",
        _ => "billing_refused",
    };

    public static ProblemHttpResult Problem(BillingProblem problem)
    {
        var extensions = new Dictionary<string, object?> { ["code"] = CodeOf(problem.Status) };
        if (problem.BillingErrorId is { } errorId) extensions["billingErrorId"] = errorId;
        if (problem.MaxAffordableOutputTokens is { } affordable) extensions["maxAffordableOutputTokens"] = affordable;
        return TypedResults.Problem(detail: problem.Detail, statusCode: StatusOf(problem.Status), title: TitleOf(problem.Status), extensions: extensions);
    }

    public static ProblemHttpResult BadRequest(string detail) =>
        TypedResults.Problem(detail: detail, statusCode: StatusCodes.Status400BadRequest, title: "Invalid input",
            extensions: new Dictionary<string, object?> { ["code"] = "invalid_input" });

    public static ProblemHttpResult Forbidden(string detail) =>
        TypedResults.Problem(detail: detail, statusCode: StatusCodes.Status403Forbidden, title: "Forbidden");

    public static ProblemHttpResult MissingBody() => BadRequest("A JSON request body is required.");
}
