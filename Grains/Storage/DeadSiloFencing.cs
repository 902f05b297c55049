using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Billing.Storage;

/// <summary>
/// Fences silos declared dead out of the database: their PostgreSQL sessions are terminated, so their open
/// transactions roll back and release their accounts' row locks. A frozen silo (GC pause, SIGSTOP, a stalled VM)
/// caught in the middle of a ledger batch otherwise keeps those rows locked, and the accounts it held, reactivated on
/// a healthy silo, wait for it until it wakes, however long the freeze (README, "Several silos, membership and fail-over").
/// Each silo names its sessions <see cref="ApplicationName"/> (connection string Application Name).
/// </summary>
public sealed partial class DeadSiloFencing(NpgsqlDataSource dataSource, IClusterMembershipService membership, ILogger<DeadSiloFencing> logger)
    : BackgroundService
{
    /// <summary>The Application Name of a silo's billing sessions (address and generation: a restarted silo is another).</summary>
    public static string ApplicationName(SiloAddress silo) => $"billing-silo {silo.ToParsableString()}";

    /// <summary>The first wait before a failed fence is tried again; it doubles up to <see cref="MaxRetryDelay"/>.</summary>
    public static readonly TimeSpan FirstRetryDelay = TimeSpan.FromSeconds(1);

    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var fenced = new HashSet<SiloAddress>();
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(stoppingToken))
            {
                foreach (var member in snapshot.Members.Values)
                {
                    if (member.Status != SiloStatus.Dead || !fenced.Add(member.SiloAddress)) continue;
                    // Tried again until it succeeds, not at the next membership change, which may never come: until
                    // then a frozen silo's open transaction keeps its accounts' rows locked.
                    if (!await TryFenceAsync(member.SiloAddress, stoppingToken)) _ = RetryUntilFencedAsync(member.SiloAddress, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task RetryUntilFencedAsync(SiloAddress silo, CancellationToken stoppingToken)
    {
        var delay = FirstRetryDelay;
        try
        {
            do
            {
                await Task.Delay(delay, stoppingToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
            }
            while (!await TryFenceAsync(silo, stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task<bool> TryFenceAsync(SiloAddress silo, CancellationToken stoppingToken)
    {
        try
        {
            await using var command = dataSource.CreateCommand(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()");
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ApplicationName(silo) });
            var terminated = (long)(await command.ExecuteScalarAsync(stoppingToken) ?? 0L);
            if (terminated > 0) LogFenced(logger, silo, terminated);
            return true;
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
        {
            LogFenceFailed(logger, silo, exception.GetType().Name, exception.Message);
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silo {Silo} was declared dead: terminated its {Sessions} database session(s), rolling back what it left open")]
    private static partial void LogFenced(ILogger logger, SiloAddress silo, long sessions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot terminate the database sessions of dead silo {Silo} ({ExceptionType}: {Reason}); trying again")]
    private static partial void LogFenceFailed(ILogger logger, SiloAddress silo, string exceptionType, string reason);
}
