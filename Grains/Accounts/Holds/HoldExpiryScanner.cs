using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Billing.Accounts;

/// <summary>Section <c>Billing:Holds</c>.</summary>
public sealed class HoldOptions
{
    public const string Section = "Billing:Holds";

    /// <summary>
    /// How often each silo looks for active holds past their expiry whose account is not recording it (its silo failed,
    /// or it was deactivated): calling the account activates it, and it records them.
    /// </summary>
    public int ExpiryScanSeconds { get; set; } = 15;

    /// <summary>How long past its expiry a hold is left to its silo's expiry queue before the scan steps in.</summary>
    public int ExpiryScanGraceSeconds { get; set; } = 5;
}

/// <summary>
/// The durable side of hold expiry (H2): an active account's holds are recorded as expired by its silo's
/// <see cref="HoldExpiryQueue"/>, which dies with its silo. Every silo periodically asks the database for active holds that are past their expiry beyond a
/// short grace and calls their accounts' <see cref="IHoldingAccountGrain.ExpireDueHolds"/>, which re-activates an
/// account of a failed silo on a live one. Instead of Orleans reminders: the holds table already says which accounts
/// are due (no second store of timers to keep in step), and duplicate calls from several silos are harmless.
/// </summary>
internal sealed partial class HoldExpiryScanner(IGrainFactory grains, HoldStore holds, TimeProvider clock, IOptions<HoldOptions> options, ILogger<HoldExpiryScanner> logger)
    : BackgroundService
{
    private const int AccountsPerScan = 1_000;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromSeconds(Math.Max(1, options.Value.ExpiryScanSeconds));
        var grace = TimeSpan.FromSeconds(Math.Max(0, options.Value.ExpiryScanGraceSeconds));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, stoppingToken);
                var due = await holds.DueAccountsAsync(clock.GetDatabaseNow() - grace, AccountsPerScan, stoppingToken);
                if (due.Count > 0) LogScan(logger, due.Count);
                await Task.WhenAll(due.Select(account => Expire(account.Kind, account.AccountId)));
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                // The silo may still be starting, or the database restarting: the next scan tries again.
                LogScanFailed(logger, exception);
            }
        }
    }

    private async Task Expire(AccountKind kind, Guid accountId)
    {
        try
        {
            IHoldingAccountGrain account = AccountGrains.Of(grains, kind, accountId);
            await account.ExpireDueHolds();
        }
        catch (Exception exception)
        {
            LogExpireFailed(logger, exception, kind, accountId);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Hold expiry scan found {AccountCount} account(s) with unrecorded expiries")]
    private static partial void LogScan(ILogger logger, int accountCount);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Hold expiry scan failed; retrying on the next scan")]
    private static partial void LogScanFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recording hold expiries of {AccountKind} account {AccountId} failed; the next scan retries")]
    private static partial void LogExpireFailed(ILogger logger, Exception exception, AccountKind accountKind, Guid accountId);
}

public static class HoldSiloBuilderExtensions
{
    /// <summary>Holds: their store, and the expiry scan of this silo.</summary>
    public static ISiloBuilder AddBillingHolds(this ISiloBuilder silo)
    {
        silo.Services.AddOptions<HoldOptions>().Bind(silo.Configuration.GetSection(HoldOptions.Section));
        silo.Services.AddSingleton<HoldStore>();
        silo.Services.AddSingleton<Billing.Usage.HoldRoutes>(); // captures and voids go straight to the payer
        silo.Services.AddSingleton<HoldExpiryQueue>();
        silo.Services.AddHostedService(services => services.GetRequiredService<HoldExpiryQueue>());
        silo.Services.AddHostedService<HoldExpiryScanner>();
        return silo;
    }
}
