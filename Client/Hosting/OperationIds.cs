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

    /// <summary>The problem member (<c>usageId</c> / <c>creditId</c>) and the id.</summary>
    public sealed record OperationId(string Member, Guid Id);
}
