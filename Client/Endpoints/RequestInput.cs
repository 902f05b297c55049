using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Billing.Client.Endpoints;

/// <summary>Parses and checks what a request carries (ids, token counts, paging); a refusal is a 400 that names the field.</summary>
internal static class RequestInput
{
    /// <summary>Parses a route or query id; a malformed (or nil) id is a 400 that names the parameter.</summary>
    public static bool TryParseId(string? raw, string name, out Guid id, out ProblemHttpResult problem)
    {
        problem = null!;
        if (Guid.TryParse(raw, out id) && id != Guid.Empty) return true;
        problem = ApiProblems.BadRequest(string.IsNullOrWhiteSpace(raw) ? $"{name} is required." : $"{name} must be a UUID.");
        return false;
    }

    /// <summary>A required id from a body; names the missing field.</summary>
    public static bool Require(Guid? value, string name, out Guid id, out ProblemHttpResult problem)
    {
        problem = null!;
        id = value ?? Guid.Empty;
        if (value is null) problem = ApiProblems.BadRequest($"{name} is required.");
        else if (value == Guid.Empty) problem = ApiProblems.BadRequest($"{name} must not be the nil UUID.");
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
                problem = ApiProblems.BadRequest($"The {OperationIds.IdempotencyKeyHeader} header must be a UUID (it is the {member}).");
                return false;
            }

            fromHeader = parsed;
        }

        if (fromBody == Guid.Empty)
        {
            problem = ApiProblems.BadRequest($"{member} must not be the nil UUID.");
            return false;
        }

        if (fromBody is not null && fromHeader is not null && fromBody != fromHeader)
        {
            problem = ApiProblems.BadRequest($"{member} in the body and the {OperationIds.IdempotencyKeyHeader} header differ; send one, or the same id in both.");
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
        if (value is null) problem = ApiProblems.BadRequest($"{name} is required.");
        else if (value < 0) problem = ApiProblems.BadRequest($"{name} must not be negative.");
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
        problem = ApiProblems.BadRequest("limit must be a whole number from 1 to 500.");
        return false;
    }

    public static bool TryParseCursor(string? raw, out long? before, out ProblemHttpResult problem)
    {
        problem = null!;
        if (Contracts.Cursor.TryParse(raw, out before)) return true;
        problem = ApiProblems.BadRequest("cursor is not a cursor this API returned (use nextCursor of the previous page).");
        return false;
    }

    /// <summary>
    /// A list's query string: <c>status</c> (a <typeparamref name="TStatus"/> name in lower case; absent for every
    /// status), <c>limit</c> and <c>cursor</c>.
    /// </summary>
    public static bool TryParseListQuery<TStatus>(string? status, string? limit, string? cursor, out ListQuery<TStatus> query, out ProblemHttpResult problem)
        where TStatus : struct, Enum
    {
        query = default;
        TStatus? filter = null;
        if (!string.IsNullOrEmpty(status))
        {
            // Names only: Enum.TryParse would also take "2" or "Active".
            var names = Enum.GetValues<TStatus>().ToDictionary(s => s.ToString().ToLowerInvariant());
            if (!names.TryGetValue(status, out var parsed))
            {
                problem = ApiProblems.BadRequest($"status must be one of: {string.Join(", ", names.Keys)}.");
                return false;
            }

            filter = parsed;
        }

        if (!TryParseLimit(limit, out var size, out problem)) return false;
        if (!TryParseCursor(cursor, out var before, out problem)) return false;
        query = new ListQuery<TStatus>(filter, size, before);
        return true;
    }
}

/// <summary>A list endpoint's parsed query: an optional status filter, the page size and the cursor to continue before.</summary>
internal readonly record struct ListQuery<TStatus>(TStatus? Status, int Limit, long? Before) where TStatus : struct, Enum;
