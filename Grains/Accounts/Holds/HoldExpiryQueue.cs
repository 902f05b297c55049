using System.Collections.Concurrent;
using Billing.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Billing.Accounts;

/// <summary>
/// When the active holds of this silo's accounts expire: one ordered set for the silo, checked every second, that
/// calls <see cref="IHoldingAccountGrain.ExpireDueHolds"/> on an account once its earliest hold is due (H2). It replaces a
/// grain timer per account, registered at a placement, ticking every second on the account's turn and disposed when its
/// holds ended: without those turns SPREAD hold + capture's p99 is lower in every measured round (docs/performance.md, "Hold expiry:
/// one queue per silo"), and an account with a day-long hold costs nothing until it is due. An account keeps its entry at (or before) the expiry of
/// its earliest active hold, and drops it when it has none; an entry that fires early (that hold was captured) costs one
/// call, which puts the account back at its next expiry. The entries die with the silo: <see cref="HoldExpiryScanner"/>
/// finds the holds of a failed silo's accounts in the database.
/// <para>
/// A call that fails (the database is down) is retried with back-off, 2 s doubling to a minute for that account, and
/// a tick logs its failures once, not once per account: reads already treat the holds as released, so only the record
/// waits. At most <see cref="MaxConcurrentExpiries"/> accounts are called at once, so a backlog (a long outage, a clock
/// jump) drains through the ledger writer's queue instead of filling it.
/// </para>
/// </summary>
public sealed partial class HoldExpiryQueue(IGrainFactory grains, TimeProvider clock, ILogger<HoldExpiryQueue> logger) : BackgroundService
{
    /// <summary>How often the queue looks for due accounts: an expiry is recorded within about this long of it.</summary>
    public static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);

    /// <summary>How many accounts the queue calls at once.</summary>
    public const int MaxConcurrentExpiries = 32;

    /// <summary>The longest wait before an account whose expiry call keeps failing is called again.</summary>
    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromMinutes(1);

    private readonly Lock gate = new();
    private readonly SortedSet<(DateTimeOffset DueAt, AccountKind Kind, Guid AccountId)> due = [];
    private readonly Dictionary<(AccountKind Kind, Guid AccountId), DateTimeOffset> entries = [];
    private readonly Dictionary<(AccountKind Kind, Guid AccountId), int> failedCalls = [];

    /// <summary>The wait after an account's <paramref name="failedCalls"/>-th failed call in a row: 2 s, 4 s, 8 s … up to <see cref="MaxRetryDelay"/>.</summary>
    public static TimeSpan RetryDelay(int failedCalls) =>
        failedCalls >= 6 ? MaxRetryDelay : TimeSpan.FromSeconds(1 << Math.Max(failedCalls, 1));

    /// <summary>When the queue will call the account; null when it holds no entry for it.</summary>
    public DateTimeOffset? ExpectedAt(AccountKind kind, Guid accountId)
    {
        lock (gate) return entries.TryGetValue((kind, accountId), out var at) ? at : null;
    }

    /// <summary>The account has an active hold expiring at <paramref name="expiresAt"/>: it is called then, or earlier if an earlier one is due.</summary>
    public void Expect(AccountKind kind, Guid accountId, DateTimeOffset expiresAt)
    {
        lock (gate) KeepEarliest(kind, accountId, expiresAt);
    }

    /// <summary>The account's earliest active hold expires at <paramref name="expiresAt"/>: its entry moves there, later or earlier.</summary>
    public void ExpectExactly(AccountKind kind, Guid accountId, DateTimeOffset expiresAt)
    {
        lock (gate) SetEntry(kind, accountId, expiresAt);
    }

    /// <summary>The account has no active hold left.</summary>
    public void Forget(AccountKind kind, Guid accountId)
    {
        lock (gate)
        {
            RemoveEntry(kind, accountId);
            failedCalls.Remove((kind, accountId));
        }
    }

    /// <summary>Moves the account's entry to <paramref name="dueAt"/> unless it is due sooner already (the caller holds the lock).</summary>
    private void KeepEarliest(AccountKind kind, Guid accountId, DateTimeOffset dueAt)
    {
        if (entries.TryGetValue((kind, accountId), out var current) && current <= dueAt) return;
        SetEntry(kind, accountId, dueAt);
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
                if (taken.Count > 0) await ExpireAll(taken, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task ExpireAll(List<(AccountKind Kind, Guid AccountId)> taken, CancellationToken stoppingToken)
    {
        var failures = new ConcurrentQueue<((AccountKind Kind, Guid AccountId) Account, Exception Error)>();
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = MaxConcurrentExpiries, CancellationToken = stoppingToken };
        await Parallel.ForEachAsync(taken, parallel, async (account, _) =>
        {
            try
            {
                IHoldingAccountGrain grain = AccountGrains.Of(grains, account.Kind, account.AccountId);
                await grain.ExpireDueHolds(); // puts the account back in the queue at its next expiry, if it has one
                lock (gate) failedCalls.Remove(account);
            }
            catch (Exception exception)
            {
                failures.Enqueue((account, exception));
            }
        });

        if (failures.IsEmpty) return;
        var now = clock.GetDatabaseNow();
        var longest = TimeSpan.Zero;
        lock (gate)
        {
            foreach (var ((kind, accountId), _) in failures)
            {
                var failed = failedCalls[(kind, accountId)] = failedCalls.GetValueOrDefault((kind, accountId)) + 1;
                var delay = RetryDelay(failed);
                if (delay > longest) longest = delay;
                // A hold placed meanwhile that expires sooner is not put off by the back-off.
                KeepEarliest(kind, accountId, now + delay);
            }
        }

        var (first, error) = failures.First();
        LogExpireFailed(logger, error, failures.Count, taken.Count, first.Kind, first.AccountId, longest);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recording the expiry of holds failed for {FailedCount} of {DueCount} due account(s), the first {AccountKind} account {AccountId}; each is retried with back-off, at most {RetryDelay} from now")]
    private static partial void LogExpireFailed(ILogger logger, Exception exception, int failedCount, int dueCount, AccountKind accountKind, Guid accountId, TimeSpan retryDelay);
}
