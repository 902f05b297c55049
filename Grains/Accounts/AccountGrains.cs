namespace Billing.Accounts;

/// <summary>The account grain of a kind (or of a billing scope's name) and id: project or user, one place.</summary>
internal static class AccountGrains
{
    public static AccountKind KindOf(string scope) => scope == BillingScopes.Project ? AccountKind.Project : AccountKind.User;

    public static IAccountGrain Of(IGrainFactory grains, AccountKind kind, Guid id) =>
        kind == AccountKind.Project ? grains.GetGrain<IProjectGrain>(id) : grains.GetGrain<IUserGrain>(id);

    public static IAccountGrain Of(IGrainFactory grains, string scope, Guid id) => Of(grains, KindOf(scope), id);
}
