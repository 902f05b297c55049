using Billing.Storage;
using Orleans.Concurrency;

namespace Billing.Errors;

[StatelessWorker, Reentrant]
public sealed class BillingErrorsGrain(BillingErrorStore store, TimeProvider clock) : Grain, IBillingErrorsGrain
{
    public async Task<BillingResult<BillingErrorPage>> List(BillingErrorQuery query)
    {
        if (query.Scope is not (BillingScopes.Project or BillingScopes.User))
            return BillingResult<BillingErrorPage>.Fail(BillingStatus.InvalidInput, "scope must be 'project' or 'user'.");
        if (query.ScopeId == Guid.Empty) return BillingResult<BillingErrorPage>.Fail(BillingStatus.InvalidInput, "scopeId must be a UUID other than the nil UUID.");
        if (query.Limit is < 1 or > 500) return BillingResult<BillingErrorPage>.Fail(BillingStatus.InvalidInput, "limit must be between 1 and 500.");
        if (query.Before is < 1) return BillingResult<BillingErrorPage>.Fail(BillingStatus.InvalidInput, "cursor is not valid.");
        return BillingResult<BillingErrorPage>.Ok(await store.ListAsync(query));
    }

    public async Task<BillingResult<BillingErrorView>> Resolve(Guid billingErrorId) =>
        await store.ResolveAsync(billingErrorId, clock.GetDatabaseNow()) is { } resolved
            ? BillingResult<BillingErrorView>.Ok(resolved)
            : BillingResult<BillingErrorView>.Fail(BillingStatus.BillingErrorNotFound, $"There is no billing error {billingErrorId}.");
}

[StatelessWorker, Reentrant]
public sealed class BillingHealthGrain(BillingErrorStore store) : Grain, IBillingHealthGrain
{
    public Task CheckDatabase() => store.PingAsync();
}
