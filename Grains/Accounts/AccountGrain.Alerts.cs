using Billing.Events;
using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Billing.Accounts;

/// <summary>Balance alerts of the account: its thresholds, kept in <c>account_alert</c> and evaluated by its group commit.</summary>
public abstract partial class AccountGrain : IBalanceAlertsGrain
{
    public const int MaxThresholds = 10;

    private AccountEvents? events;

    private AccountEvents Events => events ??= new AccountEvents(ServiceProvider.GetRequiredService<EventStore>(), Table, AccountId);

    public async Task<BillingResult<AlertSettings>> SetAlerts(decimal[] thresholds)
    {
        if (thresholds is null) return Invalid<AlertSettings>("thresholds is required.");
        if (thresholds.Length > MaxThresholds) return Invalid<AlertSettings>($"At most {MaxThresholds} thresholds.");
        if (thresholds.Any(t => t <= 0)) return Invalid<AlertSettings>("Every threshold must be a positive amount.");
        if (thresholds.Distinct().Count() != thresholds.Length) return Invalid<AlertSettings>("Thresholds must be distinct.");
        await ApplyDueGrants(); // crossed is judged on available now: a lapsed grant is written first, as GetAccount does
        if (State is null) return NotFound<AlertSettings>();

        var ordered = thresholds.OrderDescending().ToArray();
        // Between two writes of the account: every change after the version it has then is judged against these
        // thresholds (stored with that version, which the E1 check reads), and no batch judged against the old ones
        // can commit after it. Saved first, replaced in memory once saved: a reload meanwhile cannot bring back the old.
        await Commits.Submit(new StepBetweenWrites("alert thresholds change", async committed =>
        {
            if (committed is null) return;
            await ServiceProvider.GetRequiredService<EventStore>().SaveAlertsAsync(Table.Scope, AccountId, ordered, committed.Version, Clock.GetDatabaseNow());
            Events.Alerts.Replace(ordered);
        }));
        return BillingResult<AlertSettings>.Ok(Settings());
    }

    public async Task<BillingResult<AlertSettings>> GetAlerts()
    {
        await ApplyDueGrants(); // as GetAccount: a grant that lapsed or came into effect is written before crossed is shown
        return State is null ? NotFound<AlertSettings>() : BillingResult<AlertSettings>.Ok(Settings());
    }

    private AlertSettings Settings()
    {
        var available = BillingEvents.Available(State!, Clock.GetDatabaseNow());
        return new AlertSettings(Events.Alerts.Thresholds.ToArray(), Events.Alerts.Crossed(available));
    }
}
