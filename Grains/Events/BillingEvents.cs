using System.Text.Json;
using Billing.Accounts;
using Billing.Storage;

namespace Billing.Events;

/// <summary>
/// An event to insert into the outbox (<c>billing_event</c>), by the same statement as the change it reports (E1).
/// <see cref="AccountSeq"/> names the history row that caused it, when one did.
/// </summary>
public sealed record BillingEventRow(
    Guid Id,
    string Type,
    string Scope,
    Guid ScopeId,
    long? AccountSeq,
    Guid? BillingErrorId,
    decimal? Threshold,
    string Data,
    DateTimeOffset CreatedAt);

/// <summary>
/// The events one account commit writes: those decided with its rows, and (when it resolves billing errors) the
/// account's figures that the statement puts in each <c>billing_error.resolved</c> it writes for them.
/// </summary>
public sealed record LedgerEvents(IReadOnlyList<BillingEventRow> Rows, decimal Available, decimal Balance, string Currency)
{
    public static readonly LedgerEvents None = new([], 0m, 0m, AccountLedger.DefaultCurrency);
}

/// <summary>How each event is made: its <c>data</c> names the account, its available, balance and currency, and what applies.</summary>
public static class BillingEvents
{
    /// <summary>What an account can spend now (balance + quota left − held, never below 0): what balance alerts are evaluated against.</summary>
    public static decimal Available(AccountState state, DateTimeOffset now) => Billing.Accounts.HoldLedger.Available(state, now);

    public static decimal Available(AccountView account, DateTimeOffset now) => AccountLedger.Available(account, now);

    public static BillingEventRow BalanceLow(AccountState state, decimal available, decimal threshold, DateTimeOffset now) =>
        Make(BillingEventTypes.BalanceLow, state.Kind, state.Id, available, state.Balance, state.Currency, now,
            accountSeq: state.Version, threshold: threshold);

    public static BillingEventRow BalanceRecovered(AccountState state, decimal available, decimal threshold, DateTimeOffset now) =>
        Make(BillingEventTypes.BalanceRecovered, state.Kind, state.Id, available, state.Balance, state.Currency, now,
            accountSeq: state.Version, threshold: threshold);

    /// <summary>A usage (capture, hold) refused for insufficient balance, with the billing error stored for it.</summary>
    public static BillingEventRow BalanceDepleted(AccountKind kind, Guid accountId, decimal available, decimal balance, string currency, Guid billingErrorId, DateTimeOffset now) =>
        Make(BillingEventTypes.BalanceDepleted, kind, accountId, available, balance, currency, now, billingErrorId: billingErrorId);

    public static BillingEventRow BillingErrorCreated(AccountKind kind, Guid accountId, decimal available, decimal balance, string currency, Guid billingErrorId, string errorType, DateTimeOffset now) =>
        Make(BillingEventTypes.BillingErrorCreated, kind, accountId, available, balance, currency, now, billingErrorId: billingErrorId,
            extra: new() { ["errorType"] = errorType });

    public static BillingEventRow BillingErrorResolved(AccountKind kind, Guid accountId, decimal available, decimal balance, string currency, Guid billingErrorId, string errorType, DateTimeOffset now) =>
        Make(BillingEventTypes.BillingErrorResolved, kind, accountId, available, balance, currency, now, billingErrorId: billingErrorId,
            extra: new() { ["errorType"] = errorType });

    /// <summary>The seam for holds: the event of a hold that expired, written with its expiry.</summary>
    public static BillingEventRow HoldExpired(AccountState state, decimal available, Guid holdId, decimal amount, DateTimeOffset now) =>
        Make(BillingEventTypes.HoldExpired, state.Kind, state.Id, available, state.Balance, state.Currency, now,
            accountSeq: null, extra: new() { ["holdId"] = holdId, ["amount"] = amount });

    /// <summary>The seam for grants: the event of a grant that expired with <paramref name="expired"/> left, written with its grant_expired row.</summary>
    public static BillingEventRow GrantExpired(AccountState state, decimal available, Guid grantId, decimal expired, DateTimeOffset now) =>
        Make(BillingEventTypes.GrantExpired, state.Kind, state.Id, available, state.Balance, state.Currency, now,
            accountSeq: state.Version, extra: new() { ["grantId"] = grantId, ["amount"] = expired });

    public static string ScopeOf(AccountKind kind) => kind == AccountKind.Project ? BillingScopes.Project : BillingScopes.User;

    private static BillingEventRow Make(
        string type, AccountKind kind, Guid accountId, decimal available, decimal balance, string currency, DateTimeOffset now,
        long? accountSeq = null, decimal? threshold = null, Guid? billingErrorId = null, Dictionary<string, object>? extra = null)
    {
        var scope = ScopeOf(kind);
        var data = new Dictionary<string, object?>
        {
            ["scope"] = scope,
            ["scopeId"] = accountId,
            ["available"] = Math.Max(0m, available),
            ["balance"] = balance,
            ["currency"] = currency,
        };
        if (threshold is { } t) data["threshold"] = t;
        if (billingErrorId is { } e) data["billingErrorId"] = e;
        foreach (var (key, value) in extra ?? []) data[key] = value;
        return new BillingEventRow(RowIds.New(), type, scope, accountId, accountSeq, billingErrorId, threshold, JsonSerializer.Serialize(data), now);
    }
}
