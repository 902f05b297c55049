using Orleans.Metadata;

namespace Billing.Accounts;

/// <summary>Where a call to an account grain comes from, as far as the trust boundary is concerned.</summary>
public enum CallerKind
{
    /// <summary>An external cluster client (the gateway: roles are checked at HTTP), or no grain at all.</summary>
    Client,

    /// <summary>One of the billing grains of this assembly (usage, account, creator, pricing, errors).</summary>
    BillingGrain,

    /// <summary>Any other grain: an agent grain, for example.</summary>
    OtherGrain,

    /// <summary>
    /// Code running inside a silo outside any grain (a silo's hosted client). Billing silos make no money calls
    /// that way, and a grain could use it to hide its identity (a call started off its scheduler), so it is not
    /// trusted.
    /// </summary>
    SiloCode,
}

/// <summary>
/// Classifies the caller of a grain call (<see cref="IGrainCallContext.SourceId"/>) for the trust boundary of
/// DESIGN.md: the methods that move money inside an account accept only the billing grains (and, for the
/// operator's calls, the gateway), so no other code in the cluster can create money.
/// </summary>
public sealed class BillingCallers
{
    private const string HostedClientKeyPrefix = "hosted-"; // Orleans' HostedClient: ClientGrainId "hosted-{silo}"

    private readonly HashSet<GrainType> billingGrains;

    public BillingCallers(GrainTypeResolver resolver, IEnumerable<TrustedBillingGrain> hostDeclared)
    {
        // Every grain class of this assembly is a billing grain; resolved as Orleans names them, so a renamed
        // class or an explicit [GrainType] stays right.
        billingGrains = typeof(BillingCallers).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(Grain).IsAssignableFrom(t) && typeof(IGrain).IsAssignableFrom(t))
            .Concat(hostDeclared.Select(d => d.GrainClass))
            .Select(resolver.GetGrainType)
            .ToHashSet();
    }

    public CallerKind Classify(GrainId? source)
    {
        if (source is not { } id) return CallerKind.Client;
        if (GrainTypePrefix.IsClient(id))
        {
            return id.Key.ToString().StartsWith(HostedClientKeyPrefix, StringComparison.Ordinal) ? CallerKind.SiloCode : CallerKind.Client;
        }

        return billingGrains.Contains(id.Type) ? CallerKind.BillingGrain : CallerKind.OtherGrain;
    }
}

/// <summary>
/// A grain class outside the billing assembly that the host of a billing silo declares a billing grain, in code
/// (a service registration, never configuration). Production hosts declare none; the test silos declare a
/// test grain that charges accounts directly. Only the silo hosting the account grain decides: another silo
/// of the cluster (an agent silo) cannot add to it.
/// </summary>
public sealed record TrustedBillingGrain(Type GrainClass);
