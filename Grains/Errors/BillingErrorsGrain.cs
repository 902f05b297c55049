using Billing.Accounts;
using Billing.Events;
using Billing.Storage;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace Billing.Errors;

[StatelessWorker, Reentrant]
public sealed class BillingErrorsGrain(BillingErrorStore store, TimeProvider clock, ILogger<BillingErrorsGrain> logger) : Grain, IBillingErrorsGrain, IIncomingGrainCallFilter
{
    /// <summary>Lists for anyone; resolving only from the gateway or the billing grains (<see cref="OperatorCalls"/>).</summary>
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod.Name != nameof(Resolve) || OperatorCalls.Allowed(context, ServiceProvider, logger, out var detail))
        {
            await context.Invoke();
            return;
        }

        context.Result = BillingResult<BillingErrorView>.Fail(BillingStatus.Forbidden, detail);
    }

    public async Task<BillingResult<BillingErrorPage>> List(BillingErrorQuery query)
    {
        if (query.Scope is not (BillingScopes.Project or BillingScopes.User))
            return BillingResult<BillingErrorPage>.Fail(BillingStatus.InvalidInput, "scope must be 'project' or 'user'.");
        if (query.ScopeId == Guid.Empty) return BillingResult<BillingErrorPage>.Fail(BillingStatus.InvalidInput, "scopeId must be a UUID other than the nil UUID.");
        if (query.Limit is < 1 or > 500) return BillingResult<BillingErrorPage>.Fail(BillingStatus.InvalidInput, "limit must be between 1 and 500.");
        if (query.Before is < 1) return BillingResult<BillingErrorPage>.Fail(BillingStatus.InvalidInput, "cursor is not valid.");
        var page = await store.ListAsync(query);
        // No error at all: an account never initialised is a 404 (API.md, status codes), not an empty list. Asked only
        // then: an account with errors exists.
        if (page.Items.Length == 0 && query.Before is null &&
            (await Accounts.AccountGrains.Of(GrainFactory, query.Scope, query.ScopeId).GetAccount()).Problem is { Status: BillingStatus.AccountNotFound } missing)
            return BillingResult<BillingErrorPage>.Fail(missing);
        return BillingResult<BillingErrorPage>.Ok(page);
    }

    public async Task<BillingResult<BillingErrorView>> Resolve(Guid billingErrorId)
    {
        if (await store.FindAsync(billingErrorId) is not { } error)
            return BillingResult<BillingErrorView>.Fail(BillingStatus.BillingErrorNotFound, $"There is no billing error {billingErrorId}.");
        if (error.Resolved) return BillingResult<BillingErrorView>.Ok(error);

        var now = clock.GetDatabaseNow();
        var resolvedEvent = await RefusalEvents.ResolvedAsync(GrainFactory, error.Scope, error.ScopeId, error.Id, error.ErrorType, now);
        var resolved = await store.ResolveAsync(billingErrorId, now, resolvedEvent);
        return resolved is null
            ? BillingResult<BillingErrorView>.Fail(BillingStatus.BillingErrorNotFound, $"There is no billing error {billingErrorId}.")
            : BillingResult<BillingErrorView>.Ok(resolved);
    }
}

[StatelessWorker, Reentrant]
public sealed class BillingHealthGrain(BillingErrorStore store) : Grain, IBillingHealthGrain
{
    public Task CheckDatabase() => store.PingAsync();
}
