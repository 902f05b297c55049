using System.Security.Claims;
using Billing.Gateway.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Billing.Gateway.Endpoints;

/// <summary>Shared pieces of the endpoint files: problems, id parsing, access checks.</summary>
internal static class Http
{
    /// <summary>The HTTP status of each refusal of the grain contract (API.md, "Status codes for bad input").</summary>
    public static int StatusOf(BillingStatus status) => status switch
    {
        BillingStatus.InvalidInput => StatusCodes.Status400BadRequest,
        BillingStatus.AccountNotFound or BillingStatus.BillingErrorNotFound => StatusCodes.Status404NotFound,
        BillingStatus.NoPriceInEffect or BillingStatus.CurrencyMismatch => StatusCodes.Status422UnprocessableEntity,
        BillingStatus.InsufficientBalance => StatusCodes.Status402PaymentRequired,
        BillingStatus.CreatorConflict => StatusCodes.Status409Conflict,
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
        _ => "billing_refused",
    };

    public static ProblemHttpResult Problem(BillingProblem problem)
    {
        var extensions = new Dictionary<string, object?> { ["code"] = CodeOf(problem.Status) };
        if (problem.BillingErrorId is { } errorId) extensions["billingErrorId"] = errorId;
        return TypedResults.Problem(detail: problem.Detail, statusCode: StatusOf(problem.Status), title: TitleOf(problem.Status), extensions: extensions);
    }

    public static ProblemHttpResult BadRequest(string detail) =>
        TypedResults.Problem(detail: detail, statusCode: StatusCodes.Status400BadRequest, title: "Invalid input",
            extensions: new Dictionary<string, object?> { ["code"] = "invalid_input" });

    public static ProblemHttpResult Forbidden(string detail) =>
        TypedResults.Problem(detail: detail, statusCode: StatusCodes.Status403Forbidden, title: "Forbidden");

    public static ProblemHttpResult MissingBody() => BadRequest("A JSON request body is required.");

    /// <summary>Parses a route or query id; a malformed (or nil) id is a 400 that names the parameter.</summary>
    public static bool TryParseId(string? raw, string name, out Guid id, out ProblemHttpResult problem)
    {
        problem = null!;
        if (Guid.TryParse(raw, out id) && id != Guid.Empty) return true;
        problem = BadRequest(string.IsNullOrWhiteSpace(raw) ? $"{name} is required." : $"{name} must be a UUID.");
        return false;
    }

    /// <summary>A required id from a body; names the missing field.</summary>
    public static bool Require(Guid? value, string name, out Guid id, out ProblemHttpResult problem)
    {
        problem = null!;
        id = value ?? Guid.Empty;
        if (value is null) problem = BadRequest($"{name} is required.");
        else if (value == Guid.Empty) problem = BadRequest($"{name} must not be the nil UUID.");
        else return true;
        return false;
    }

    /// <summary>
    /// An idempotency id (<paramref name="member"/>: usageId or creditId): from the body, else the Idempotency-Key
    /// header (a UUID), else a new one. Both and different: 400. The caller remembers it for fault answers.
    /// </summary>
    public static bool TryResolveId(Guid? fromBody, string? header, string member, out Guid id, out ProblemHttpResult problem)
    {
        problem = null!;
        id = Guid.Empty;
        Guid? fromHeader = null;
        if (header is not null)
        {
            if (!Guid.TryParse(header, out var parsed) || parsed == Guid.Empty)
            {
                problem = BadRequest($"The {OperationIds.IdempotencyKeyHeader} header must be a UUID (it is the {member}).");
                return false;
            }

            fromHeader = parsed;
        }

        if (fromBody == Guid.Empty)
        {
            problem = BadRequest($"{member} must not be the nil UUID.");
            return false;
        }

        if (fromBody is not null && fromHeader is not null && fromBody != fromHeader)
        {
            problem = BadRequest($"{member} in the body and the {OperationIds.IdempotencyKeyHeader} header differ; send one, or the same id in both.");
            return false;
        }

        id = fromBody ?? fromHeader ?? Guid.NewGuid();
        return true;
    }

    /// <summary>A required token count: present, whole (the JSON reader refuses fractions), not negative.</summary>
    public static bool RequireTokens(long? value, string name, out long tokens, out ProblemHttpResult problem)
    {
        problem = null!;
        tokens = value ?? 0;
        if (value is null) problem = BadRequest($"{name} is required.");
        else if (value < 0) problem = BadRequest($"{name} must not be negative.");
        else return true;
        return false;
    }

    public static bool TryParseLimit(string? raw, out int limit, out ProblemHttpResult problem)
    {
        problem = null!;
        limit = 50;
        if (string.IsNullOrEmpty(raw)) return true;
        if (int.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out limit) && limit is >= 1 and <= 500)
            return true;
        problem = BadRequest("limit must be a whole number from 1 to 500.");
        return false;
    }

    public static bool TryParseCursor(string? raw, out long? before, out ProblemHttpResult problem)
    {
        problem = null!;
        if (Contracts.Cursor.TryParse(raw, out before)) return true;
        problem = BadRequest("cursor is not a cursor this API returned (use nextCursor of the previous page).");
        return false;
    }

    /// <summary>Plain users may read their own user account; service and admin may read all.</summary>
    public static bool MayReadUser(ClaimsPrincipal caller, Guid userId) => caller.IsService() || caller.SubjectId() == userId;

    /// <summary>Plain users may read the projects they created; service and admin may read all.</summary>
    public static bool MayReadProject(ClaimsPrincipal caller, AccountView project) =>
        caller.IsService() || (caller.SubjectId() is { } sub && project.CreatorId == sub);

    public const string NotYours = "This token may read only its own user account and the projects its subject created.";
}
