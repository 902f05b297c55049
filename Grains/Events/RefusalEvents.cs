namespace Billing.Events;

/// <summary>
/// The events of a refusal for insufficient balance that stores a billing error: <c>balance.depleted</c> and
/// <c>billing_error.created</c>, written by the statement that stores the error (<c>UsageRecordStore</c>).
/// </summary>
internal static class RefusalEvents
{
    /// <summary>The account's figures now (it refused, so it exists), and a maker of the events once the error id is known.</summary>
    public static async Task<Func<Guid, IReadOnlyList<BillingEventRow>>> ForAsync(IGrainFactory grains, string scope, Guid scopeId, DateTimeOffset now)
    {
        var kind = Accounts.AccountGrains.KindOf(scope);
        var view = (await Accounts.AccountGrains.Of(grains, kind, scopeId).GetAccount()).Value;
        var available = view is null ? 0m : BillingEvents.Available(view, now);
        var balance = view?.Balance ?? 0m;
        var currency = view?.Currency ?? Accounts.AccountLedger.DefaultCurrency;
        return errorId =>
        [
            BillingEvents.BalanceDepleted(kind, scopeId, available, balance, currency, errorId, now),
            BillingEvents.BillingErrorCreated(kind, scopeId, available, balance, currency, errorId, BillingErrorTypes.InsufficientBalance, now),
        ];
    }

    /// <summary>The <c>billing_error.resolved</c> of an error resolved by hand, with its account's figures now.</summary>
    public static async Task<BillingEventRow> ResolvedAsync(IGrainFactory grains, string scope, Guid scopeId, Guid errorId, string errorType, DateTimeOffset now)
    {
        var kind = Accounts.AccountGrains.KindOf(scope);
        var view = (await Accounts.AccountGrains.Of(grains, kind, scopeId).GetAccount()).Value;
        return BillingEvents.BillingErrorResolved(kind, scopeId, view is null ? 0m : BillingEvents.Available(view, now),
            view?.Balance ?? 0m, view?.Currency ?? Accounts.AccountLedger.DefaultCurrency, errorId, errorType, now);
    }
}
