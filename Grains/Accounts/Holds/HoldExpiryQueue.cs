using Billing.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Billing.Accounts;

/// <summary>
/// When the active holds of this silo's accounts expire: one ordered set for the silo, checked every second, that
/// calls <see cref="IHoldingAccountGrain.ExpireDueHolds"/> on an account once its earliest hold is due (H2). It replaces a
/// grain timer per account, registered at a placement, ticking every second on the account's turn and disposed when its
/// holds ended: without those turns SPREAD hold + capture's p99 is lower in every measured round (README, "Hold expiry:
/// one queue per silo"), and an account with a day-long hold costs nothing until it is due. An account keeps its entry at (or before) the expiry of
/// its earliest active hold, and drops it when it has none; an entry that fires early (that hold was captured) costs one
/// call, which puts the account back at its next expiry. The entries die with the silo: <see cref="HoldExpiryScanner"/>
/// finds the holds of a failed silo's accounts in the database.
/// </summary>
public sealed partial class HoldExpiryQueue(IGrainFactory grains, TimeProvider clock, ILogger<HoldExpiryQueue> logger) : BackgroundService
{
    /// <summary>How often the queue looks for due accounts: an expiry is recorded within about this long of it.</summary>
    public static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);

    private readonly Lock gate = new();
    private readonly SortedSet<(DateTimeOffset DueAt, AccountKind Kind, Guid AccountId)> due = [];
    private readonly Dictionary<(AccountKind Kind, Guid AccountId), DateTimeOffset> entries = [];

    /// <summary>When the queue will call the account; null when it holds no entry for it.</summary>
    public DateTimeOffset? ExpectedAt(AccountKind kind, Guid accountId)
    {
        lock (gate) return entries.TryGetValue((kind, accountId), out var at) ? at : null;
    }

    /// <summary>The account has an active hold expiring at <paramref name="expiresAt"/>: it is called then, or earlier if an earlier one is due.</summary>
    public void Expect(AccountKind kind, Guid accountId, DateTimeOffset expiresAt)
    {
        lock (gate)
        {
            if (entries.TryGetValue((kind, accountId), out var current) && current <= expiresAt) return;
            SetEntry(kind, accountId, expiresAt);
        }
    }

    /// <summary>The account's earliest active hold expires at <paramref name="expiresAt"/>: its entry moves there, later or earlier.</summary>
    public void ExpectExactly(AccountKind kind, Guid accountId, DateTimeOffset expiresAt)
    {
        lock (gate) SetEntry(kind, accountId, expiresAt);
    }

    /// <summary>The account has no active hold left.</summary>
    public void Forget(AccountKind kind, Guid accountId)
    {
        lock (gate) RemoveEntry(kind, accountId);
    }

    private void SetEntry(AccountKind kind, Guid accountId, DateTimeOffset dueAt)
    {
        RemoveEntry(kind, accountId);
        entries[(kind, accountId)] = dueAt;
        due.Add((dueAt, kind, accountId));
    }

    private void RemoveEntry(AccountKind kind, Guid accountId)
    {
        if (entries.Remove((kind, accountId), out var current)) due.Remove((current, kind, accountId));
    }

    /// <summary>Takes the accounts whose entry is due at <paramref name="now"/> out of the queue.</summary>
    private List<(AccountKind Kind, Guid AccountId)> TakeDue(DateTimeOffset now)
    {
        var taken = new List<(AccountKind, Guid)>();
        lock (gate)
        {
            while (due.Count > 0 && due.Min.DueAt <= now)
            {
                var (_, kind, accountId) = due.Min;
                due.Remove(due.Min);
                entries.Remove((kind, accountId));
                taken.Add((kind, accountId));
            }
        }

        return taken;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Real seconds between looks, the grains' clock (movable in tests) for what is due.
        using var timer = new PeriodicTimer(Tick);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var taken = TakeDue(clock.GetDatabaseNow());
                if (taken.Count > 0) await Task.WhenAll(taken.Select(account => Expire(account.Kind, account.AccountId)));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task Expire(AccountKind kind, Guid accountId)
    {
        try
        {
            IHoldingAccountGrain account = kind == AccountKind.Project ? grains.GetGrain<IProjectGrain>(accountId) : grains.GetGrain<IUserGrain>(accountId);
            await account.ExpireDueHolds(); // puts the account back in the queue at its next expiry, if it has one
        }
        catch (Exception exception)
        {
            // Reads already treat the holds as released; the record is tried again on the next tick.
            LogExpireFailed(logger, exception, kind, accountId);
            Expect(kind, accountId, clock.GetDatabaseNow());
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recording the expiry of holds of {AccountKind} account {AccountId} failed; retrying on the next tick")]
    private static partial void LogExpireFailed(ILogger logger, Exception exception, AccountKind accountKind, Guid accountId);
}
