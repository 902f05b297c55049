namespace Billing.Client.Hosting;

/// <summary>
/// The idempotency id of the request being served (a usage id or credit id, given or generated), kept on the
/// request so a fault answered by <see cref="GatewayExceptionHandler"/> still tells the caller which id to retry with.
/// </summary>
internal static class OperationIds
{
    /// <summary>The response header that carries the id on a 503 (and the request header that may carry it).</summary>
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    public const string UsageId = "usageId";
    public const string CreditId = "creditId";

    private const string ItemKey = "Billing.OperationId";

    /// <summary>Call before the cluster is asked to do anything with the id.</summary>
    public static void Remember(HttpContext http, string member, Guid id) => http.Items[ItemKey] = new OperationId(member, id);

    public static OperationId? Of(HttpContext http) => http.Items.TryGetValue(ItemKey, out var value) ? value as OperationId : null;

    /// <summary>
    /// Every 503 of a request that carries an id names it (API.md: "in the problem body and the Idempotency-Key
    /// response header on a 503"), whichever path wrote it: a cluster fault (<see cref="GatewayExceptionHandler"/>)
    /// or a grain's <see cref="BillingStatus.Overloaded"/> refusal. Applied by the one CustomizeProblemDetails.
    /// </summary>
    public static void AddToRetryable(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        if ((problem.Status ?? context.HttpContext.Response.StatusCode) != StatusCodes.Status503ServiceUnavailable) return;
        var headers = context.HttpContext.Response.Headers;
        if (string.IsNullOrEmpty(headers.RetryAfter)) headers.RetryAfter = "1";
        if (Of(context.HttpContext) is not { } operation) return;
        problem.Extensions[operation.Member] = operation.Id;
        headers[IdempotencyKeyHeader] = operation.Id.ToString();
        var id = operation.Id.ToString();
        if (problem.Detail is not { } detail || !detail.Contains(id, StringComparison.Ordinal))
            problem.Detail = $"{problem.Detail} Retry with the same {operation.Member} ({id}, also in the {IdempotencyKeyHeader} header): it is applied at most once.".TrimStart();
    }

    /// <summary>The problem member (<c>usageId</c> / <c>creditId</c>) and the id.</summary>
    public sealed record OperationId(string Member, Guid Id);
}
