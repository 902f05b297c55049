namespace Billing;

/// <summary>What kind of credit a grant is; promotional credit is spent before paid credit of the same rank.</summary>
[GenerateSerializer]
public enum GrantCategory
{
    Promotional = 0,
    Paid = 1,
}

/// <summary>
/// Where a grant is in its life: scheduled (before effectiveAt), active, depleted (in effect, nothing left), expired
/// (what was left at expiresAt left the balance), voided (taken back by an admin).
/// </summary>
[GenerateSerializer]
public enum GrantStatus
{
    Scheduled = 0,
    Active = 1,
    Depleted = 2,
    Expired = 3,
    Voided = 4,
}

/// <summary>
/// A grant to give an account. <see cref="GrantId"/> makes it idempotent; <see cref="EffectiveAt"/> defaults to now;
/// <see cref="ExpiresAt"/> null means it never expires. <see cref="Priority"/> 0–100, lowest spent first.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.GrantInput")]
public sealed record GrantInput(
    Guid GrantId,
    decimal Amount,
    GrantCategory Category,
    int Priority,
    DateTimeOffset? EffectiveAt,
    DateTimeOffset? ExpiresAt,
    string? Description);

[GenerateSerializer, Immutable, Alias("Billing.GrantView")]
public sealed record GrantView(
    Guid GrantId,
    Guid AccountId,
    AccountKind Kind,
    GrantCategory Category,
    int Priority,
    decimal Amount,
    decimal Remaining,
    string Currency,
    DateTimeOffset EffectiveAt,
    DateTimeOffset? ExpiresAt,
    GrantStatus Status,
    string? Description,
    DateTimeOffset CreatedAt);

/// <summary>The grant after a grant call; <see cref="Created"/> is false when its id had been granted before.</summary>
[GenerateSerializer, Immutable, Alias("Billing.GrantIssued")]
public sealed record GrantIssued(GrantView Grant, bool Created);

/// <summary>An account's grants, newest first, before the cursor <see cref="Before"/> when given; of one status when given.</summary>
[GenerateSerializer, Immutable, Alias("Billing.GrantQuery")]
public sealed record GrantQuery(GrantStatus? Status, int Limit, long? Before);

[GenerateSerializer, Immutable, Alias("Billing.GrantPage")]
public sealed record GrantPage(GrantView[] Items, long? NextBefore);

/// <summary>What one history row moved on one grant, with the row's sign (a charge's draws add up to its amount).</summary>
[GenerateSerializer, Immutable, Alias("Billing.GrantDraw")]
public sealed record GrantDraw(Guid GrantId, decimal Amount);

/// <summary>The grant operations of an account grain (part of <see cref="IAccountGrain"/>).</summary>
[Alias("Billing.ICreditGrants")]
public interface ICreditGrants
{
    /// <summary>Gives the account a grant (idempotent by grant id). Protected like a credit.</summary>
    [Alias("Grant")]
    Task<BillingResult<GrantIssued>> Grant(GrantInput grant);

    /// <summary>Takes back what is left of one of this account's grants (a grant_voided row); idempotent.</summary>
    [Alias("VoidGrant")]
    Task<BillingResult<GrantView>> VoidGrant(Guid grantId);

    [Alias("GetGrants")]
    Task<BillingResult<GrantPage>> GetGrants(GrantQuery query);

    /// <summary>Writes what time has made due (grants coming into effect or expiring); anyone may ask, it creates no money.</summary>
    [Alias("ApplyDueGrants")]
    Task ApplyDueGrants();
}

/// <summary>Grant operations that start from a grant id alone. Stateless; use key 0.</summary>
[Alias("Billing.IGrantsGrain")]
public interface IGrantsGrain : IGrainWithIntegerKey
{
    /// <summary>Voids a grant wherever it is; <see cref="BillingStatus.GrantNotFound"/> when no account has it.</summary>
    [Alias("Void")]
    Task<BillingResult<GrantView>> Void(Guid grantId);
}

/// <summary>History reasons of grants (the <c>reason</c> column).</summary>
public static class GrantReasons
{
    public const string GrantCredit = "grant_credit";
    public const string GrantExpired = "grant_expired";
    public const string GrantVoided = "grant_voided";
}

public static class GrantDefaults
{
    /// <summary>The priority of automatic grants and top-ups, and of admin grants that name none.</summary>
    public const int Priority = 50;
}
