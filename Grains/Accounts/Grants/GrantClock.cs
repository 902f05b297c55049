using Billing.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Billing.Accounts;

/// <summary>
/// Time for accounts nobody touches: every <see cref="CreditGrantOptions.SweepInterval"/> each silo asks the database
/// which accounts have a grant due (to come into effect or to expire) and asks those accounts to write it
/// (<see cref="ICreditGrants.ApplyDueGrants"/>). The database is the schedule, so nothing is lost when a silo stops
/// or an account is deactivated; touching an account applies the same lazily. Every silo sweeps: a second ask
/// finds nothing due and writes nothing.
/// </summary>
public sealed partial class GrantClock(LedgerStore ledger, IGrainFactory grains, TimeProvider clock, IOptions<CreditGrantOptions> options, ILogger<GrantClock> logger)
    : BackgroundService
{
    /// <summary>Accounts asked per sweep; more wait for the next.</summary>
    public const int AccountsPerSweep = 500;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.SweepInterval;
        if (interval <= TimeSpan.Zero) return; // switched off: only touches apply grant time
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var due = await ledger.Grants.DueAccountsAsync(clock.GetDatabaseNow(), AccountsPerSweep, stoppingToken);
                if (due.Count == 0) continue;
                await Task.WhenAll(due.Select(a => Account(a.Kind, a.AccountId).ApplyDueGrants()));
                LogSwept(logger, due.Count);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                // The silo may still be starting, or the database away: the next sweep tries again.
                LogSweepFailed(logger, exception);
            }
        }
    }

    private ICreditGrants Account(AccountKind kind, Guid id) => AccountGrains.Of(grains, kind, id);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Grant clock: applied due grants of {AccountCount} account(s)")]
    private static partial void LogSwept(ILogger logger, int accountCount);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Grant clock: a sweep failed; the next one retries")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}
