using Billing.Storage;
using Orleans.Concurrency;

namespace Billing.Events;

/// <summary>Reads the outbox for consumers that poll or reconcile (<c>GET /v1/events</c>).</summary>
[StatelessWorker, Reentrant]
public sealed class BillingEventsGrain(EventStore store) : Grain, IBillingEventsGrain
{
    public const int MaxLimit = 500;

    public async Task<BillingResult<BillingEventPage>> List(BillingEventQuery query)
    {
        if (query.Limit is < 1 or > MaxLimit) return Invalid($"limit must be between 1 and {MaxLimit}.");
        if (!EventCursor.TryParse(query.After, out var after)) return Invalid("after is not a cursor this API returned (use nextCursor of the previous page).");
        if (query.Scope is not (null or BillingScopes.Project or BillingScopes.User)) return Invalid("scope must be 'project' or 'user'.");
        if (query.ScopeId == Guid.Empty) return Invalid("scopeId must be a UUID other than the nil UUID.");
        if (query.Types is { } types && types.FirstOrDefault(t => !BillingEventTypes.All.Contains(t)) is { } unknown)
            return Invalid($"Unknown event type '{unknown}'; one of: {string.Join(", ", BillingEventTypes.All.Order())}.");
        var page = await store.ListAsync(query, after);
        // No item: the cursor stays where the caller was, so a poller keeps it.
        return BillingResult<BillingEventPage>.Ok(page.Items.Length == 0 ? page with { NextCursor = query.After ?? after.ToString() } : page);
    }

    private static BillingResult<BillingEventPage> Invalid(string detail) => BillingResult<BillingEventPage>.Fail(BillingStatus.InvalidInput, detail);
}
