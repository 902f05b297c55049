using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Billing.Accounts;

/// <summary>The account's grants (API.md "Credit grants"): give, void, list, and apply what time has made due.</summary>
public abstract partial class AccountGrain
{
    public const int MaxGrantDescriptionLength = 500;

    private protected CreditGrantOptions GrantOptions => ServiceProvider.GetRequiredService<IOptions<CreditGrantOptions>>().Value;

    public async Task<BillingResult<GrantIssued>> Grant(GrantInput grant)
    {
        if (ValidateGrant(grant) is { } invalid)
        {
            // Without effectiveAt the expiry is checked against now; a retry of a grant that has expired since (its
            // first answer lost) is still that grant: answered as stored, not refused.
            if (grant.GrantId != Guid.Empty && grant.EffectiveAt is null && await StoredGrant(grant.GrantId) is { } stored) return stored;
            return Invalid<GrantIssued>(invalid);
        }

        if (State is null) return NotFound<GrantIssued>();
        // Top-ups and grants keep apart ids. A grant for later writes no row now (nor a credit id when it comes due),
        // so no unique index would meet a top-up's id: looked up here. A grant in effect now meets it in its own
        // statement (StoredAccountLedger settles it).
        if (grant.EffectiveAt > Clock.GetDatabaseNow()
            && (await Ledger.CreditIdReasonsAsync(Table, AccountId, [grant.GrantId])).TryGetValue(grant.GrantId, out var reason) && reason != GrantReasons.GrantCredit)
            return BillingResult<GrantIssued>.Fail(CreditOperation.TopUpsIdTaken(grant.GrantId));
        return await TopUp(new GrantOperation(grant));
    }

    /// <summary>A grant already stored under this id: this account's (as it is once what is due is written), or another's (refused).</summary>
    private async Task<BillingResult<GrantIssued>?> StoredGrant(Guid grantId)
    {
        await ApplyDueGrants();
        if (State is null || await Ledger.Grants.FindAsync(grantId) is not var (grant, kind, owner)) return null;
        return kind == Table.Kind && owner == AccountId
            ? BillingResult<GrantIssued>.Ok(new GrantIssued(grant.ToView(owner, kind), Created: false))
            : Invalid<GrantIssued>($"grantId {grantId} is already a grant of another account.");
    }

    public async Task<BillingResult<GrantView>> VoidGrant(Guid grantId)
    {
        if (grantId == Guid.Empty) return Invalid<GrantView>("grantId must not be the nil UUID.");
        await Commits.ReloadIfNeeded();
        if (State is null) return NotFound<GrantView>();
        // Null: the write in flight when it was queued ended the grant (depleted or expired); answered as stored then.
        if (State.Grants.Any(g => g.GrantId == grantId)) return await Commits.Submit(new VoidGrantOperation(grantId)) ?? await StoredGrantView(grantId);
        return await StoredGrantView(grantId);
    }

    /// <summary>A grant that is not open: ended before (voided, expired or depleted; a void of it is a no-op), or not this account's.</summary>
    private async Task<BillingResult<GrantView>> StoredGrantView(Guid grantId)
    {
        var stored = await Ledger.Grants.FindAsync(grantId);
        return stored is var (grant, kind, owner) && kind == Table.Kind && owner == AccountId
            ? BillingResult<GrantView>.Ok(grant.ToView(owner, kind))
            : BillingResult<GrantView>.Fail(BillingStatus.GrantNotFound, $"The {Table.Scope} account {AccountId} has no grant {grantId}.");
    }

    public async Task<BillingResult<GrantPage>> GetGrants(GrantQuery query)
    {
        if (query.Limit is < 1 or > 500) return Invalid<GrantPage>("limit must be between 1 and 500.");
        if (query.Before is < 1) return Invalid<GrantPage>("cursor is not valid.");
        await ApplyDueGrants();
        if (State is null) return NotFound<GrantPage>();
        return BillingResult<GrantPage>.Ok(await Ledger.Grants.ListAsync(Table, AccountId, query));
    }

    /// <summary>Writes what time has made due, if anything; reads call it first so they never show a lapsed grant as balance.</summary>
    public async Task ApplyDueGrants()
    {
        await Commits.ReloadIfNeeded();
        if (State is null || !CreditGrants.HasDue(State.Grants, Clock.GetDatabaseNow())) return;
        await Commits.Submit(new GrantClockOperation());
    }

    private string? ValidateGrant(GrantInput grant)
    {
        if (grant.GrantId == Guid.Empty) return "grantId must not be the nil UUID.";
        if (MoneyAmounts.Refusal(grant.Amount, "amount") is { } badAmount) return badAmount;
        if (!Enum.IsDefined(grant.Category)) return "category must be promotional or paid.";
        if (grant.Priority is < 0 or > 100) return "priority must be from 0 to 100.";
        if (grant.ExpiresAt is { } expiry && expiry <= (grant.EffectiveAt ?? Clock.GetDatabaseNow()))
            return "expiresAt must be after effectiveAt (after now when effectiveAt is not given).";
        if (grant.Description is { Length: > MaxGrantDescriptionLength }) return $"description must be at most {MaxGrantDescriptionLength} characters.";
        // PostgreSQL text cannot hold U+0000: refused here as input, not failed by the database as a 500.
        if (grant.Description?.Contains('\0') == true) return "description must not contain the NUL character (U+0000).";
        return null;
    }
}
