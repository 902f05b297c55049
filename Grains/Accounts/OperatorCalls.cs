using Billing.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Billing.Accounts;

/// <summary>
/// The trust boundary of the operator's calls that are not on an account: model prices, webhook endpoints, resolving
/// billing errors. The gateway's admin and service routes make them (a cluster client: roles are checked at HTTP),
/// and so may the billing grains; another grain of the cluster may not (DESIGN.md: agents call the core through
/// <see cref="IUsageGrain"/> and the operations they are allowed). A price is what every tenant's usage costs, and a
/// webhook endpoint receives every account's events: an agent grain re-pricing a model or adding an endpoint would
/// reach every account.
/// </summary>
internal static partial class OperatorCalls
{
    /// <summary>
    /// Whether <paramref name="context"/>'s caller may make this operator's call; when not, the refusal is logged and
    /// counted, and <paramref name="detail"/> says why.
    /// </summary>
    public static bool Allowed(IIncomingGrainCallContext context, IServiceProvider services, ILogger logger, out string detail)
    {
        var caller = services.GetRequiredService<BillingCallers>().Classify(context.SourceId);
        if (caller is CallerKind.BillingGrain or CallerKind.Client)
        {
            detail = "";
            return true;
        }

        var method = context.InterfaceMethod.Name;
        LogForbidden(logger, context.InterfaceMethod.DeclaringType?.Name, method, context.SourceId?.ToString(), caller);
        BillingMetrics.RecordRefusal(BillingStatus.Forbidden);
        detail = $"{method} is an operator's call (the gateway's admin and service routes); it is not allowed from this caller.";
        return false;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Interface}.{Method} from {Caller} ({CallerKind}): an operator's call, outside the trust boundary")]
    private static partial void LogForbidden(ILogger logger, string? @interface, string method, string? caller, CallerKind callerKind);
}
