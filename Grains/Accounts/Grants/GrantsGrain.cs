using Billing.Diagnostics;
using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace Billing.Accounts;

/// <summary>
/// Grant calls that start from a grant id alone (<c>POST /v1/grants/{grantId}/void</c>): finds the account that
/// holds the grant and asks it. Like a credit, only the billing grains and the gateway may call it.
/// </summary>
[StatelessWorker, Reentrant]
public sealed partial class GrantsGrain(LedgerStore ledger, ILogger<GrantsGrain> logger) : Grain, IGrantsGrain, IIncomingGrainCallFilter
{
    public async Task<BillingResult<GrantView>> Void(Guid grantId)
    {
        if (grantId == Guid.Empty) return BillingResult<GrantView>.Fail(BillingStatus.InvalidInput, "grantId must not be the nil UUID.");
        if (await ledger.Grants.FindAsync(grantId) is not var (_, kind, accountId))
            return BillingResult<GrantView>.Fail(BillingStatus.GrantNotFound, $"There is no grant {grantId}.");
        var account = AccountGrains.Of(GrainFactory, kind, accountId);
        return await account.VoidGrant(grantId);
    }

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        var caller = ServiceProvider.GetRequiredService<BillingCallers>().Classify(context.SourceId);
        if (caller is CallerKind.BillingGrain or CallerKind.Client)
        {
            await context.Invoke();
            return;
        }

        LogForbidden(logger, context.InterfaceMethod.Name, context.SourceId?.ToString(), caller);
        BillingMetrics.RecordRefusal(BillingStatus.Forbidden);
        context.Result = BillingResult<GrantView>.Fail(BillingStatus.Forbidden, "Voiding a grant is not allowed from this caller: only the billing grains and the gateway move money.");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Method} on grants from {Caller} ({CallerKind}): outside the trust boundary")]
    private static partial void LogForbidden(ILogger logger, string method, string? caller, CallerKind callerKind);
}
