using System.Collections.Concurrent;

namespace Billing.Usage;

/// <summary>Which account pays a hold, and for which project and model: fixed when the hold is placed.</summary>
internal sealed record HoldRoute(Guid HoldId, PayingAccount Payer, Guid AccountId, Guid? ProjectId, Guid ModelId, DateTimeOffset ExpiresAt)
{
    public static HoldRoute Of(HoldView hold) => new(hold.HoldId, hold.Payer, hold.AccountId, hold.ProjectId, hold.ModelId, hold.ExpiresAt);
}

/// <summary>
/// The routes of the holds placed through this silo, so that their capture or void goes straight to the paying
/// account: reading the hold from the database only to learn its payer was 17 % of the silo's CPU samples in the hold
/// benchmark, and a round trip per capture. A route never changes once the hold is placed, so a remembered one cannot
/// be stale; a hold not remembered here (placed through another silo, or after a restart, or past the bound) is read
/// from the database. Captured and voided holds are forgotten; expired ones (a late capture is still allowed) are
/// swept when the bound is reached.
/// </summary>
internal sealed class HoldRoutes(TimeProvider clock)
{
    /// <summary>At most this many routes (≈ 150 bytes each).</summary>
    public const int Capacity = 100_000;

    /// <summary>A sweep that found nothing to drop is not tried again before this long.</summary>
    private static readonly TimeSpan SweepBackoff = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<Guid, HoldRoute> routes = new();
    private long nextSweepTicks;

    // Kept beside the dictionary: ConcurrentDictionary.Count takes every one of its locks.
    private int count;
    private int sweeping;

    public int Count => Volatile.Read(ref count);

    public void Remember(HoldView hold)
    {
        if (routes.ContainsKey(hold.HoldId)) return;
        if (Count >= Capacity && !TrySweep()) return;
        if (routes.TryAdd(hold.HoldId, HoldRoute.Of(hold))) Interlocked.Increment(ref count);
    }

    public HoldRoute? Find(Guid holdId) => routes.TryGetValue(holdId, out var route) ? route : null;

    public void Forget(Guid holdId)
    {
        if (routes.TryRemove(holdId, out _)) Interlocked.Decrement(ref count);
    }

    /// <summary>Drops the routes of holds past their expiry; false when the bound is still reached (or another caller sweeps).</summary>
    private bool TrySweep()
    {
        var now = clock.GetUtcNow();
        if (now.UtcTicks < Interlocked.Read(ref nextSweepTicks) || Interlocked.Exchange(ref sweeping, 1) == 1) return false;
        try
        {
            foreach (var (holdId, route) in routes)
            {
                if (route.ExpiresAt <= now) Forget(holdId);
            }

            if (Count < Capacity) return true;
            Interlocked.Exchange(ref nextSweepTicks, (now + SweepBackoff).UtcTicks);
            return false;
        }
        finally
        {
            Volatile.Write(ref sweeping, 0);
        }
    }
}
