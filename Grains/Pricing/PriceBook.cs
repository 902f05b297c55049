using System.Diagnostics;
using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Billing.Pricing;

/// <summary>
/// This silo's copy of every model's price schedule (<c>model_pricing</c>), so pricing a usage needs no call to
/// another silo (the model's pricing grain was a hop, a hot spot and, on a frozen silo, a stall of every usage).
/// <para>
/// Exact across silos, by two rules (README "Prices on every silo"):
/// <list type="bullet">
/// <item>Push: <see cref="ModelPricingGrain.AddPrice"/> stores a price, then hands it to the price book of every
/// silo hosting the billing grains (<see cref="IPriceBookService"/>) and answers only after each has it.</item>
/// <item>Lease: a book may price only within <see cref="Lease"/> of the start of its last complete load from the
/// database (monotonic clock; a background refresh keeps it fresh; a frozen silo finds it expired when it wakes
/// and reloads before pricing). So when a silo does not acknowledge a push within <see cref="PushTimeout"/>,
/// the writer waits until <see cref="Lease"/> has passed since the row was committed: by then that silo either
/// reloaded after the commit or prices nothing.</item>
/// </list>
/// Rows are append-only and merged by id, so a push and a load can arrive in any order.
/// </para>
/// </summary>
public sealed partial class PriceBook(PricingStore store, ILogger<PriceBook> logger)
{
    /// <summary>How long a complete load may be used to price usage.</summary>
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(6);

    /// <summary>How often the book reloads in the background (well inside <see cref="Lease"/>).</summary>
    public static readonly TimeSpan RefreshPeriod = TimeSpan.FromSeconds(2);

    /// <summary>How long the writer waits for a silo to acknowledge a new price before falling back on the lease.</summary>
    public static readonly TimeSpan PushTimeout = TimeSpan.FromSeconds(2);

    private static readonly Dictionary<Guid, ModelPrice[]> Empty = [];

    private readonly Lock gate = new();
    private Dictionary<Guid, ModelPrice[]> models = Empty;
    private long loadedAt; // Stopwatch timestamp taken before the last complete load's query began; 0: never loaded
    private Task? loading;

    /// <summary>The price book of the silo (or test host) whose services these are.</summary>
    public static PriceBook Of(IServiceProvider services) => services.GetRequiredService<PriceBook>();

    /// <summary>The newest price of <paramref name="modelId"/> whose effective date has come at <paramref name="at"/>, or null.</summary>
    public async ValueTask<ModelPrice?> GetPriceAt(Guid modelId, DateTimeOffset at)
    {
        // Check and read with no await in between: a usage that starts after a lease expired never sees the old book.
        while (!IsFresh()) await ReloadAsync();
        return Volatile.Read(ref models).TryGetValue(modelId, out var prices) ? prices.LastOrDefault(p => p.EffectiveFrom <= at) : null;
    }

    private bool IsFresh()
    {
        var at = Volatile.Read(ref loadedAt);
        return at != 0 && Stopwatch.GetElapsedTime(at) <= Lease;
    }

    /// <summary>Adds a price this silo was told about (idempotent).</summary>
    public void Apply(ModelPrice price)
    {
        lock (gate) models = Merge(models, [price]);
    }

    /// <summary>Adds <paramref name="modelId"/>'s prices as stored now (a price committed before this call is among them).</summary>
    public async Task ApplyStoredAsync(Guid modelId)
    {
        var rows = await store.LoadAsync(modelId);
        lock (gate) models = Merge(models, rows);
    }

    /// <summary>Loads the whole schedule; concurrent callers share one load.</summary>
    public Task ReloadAsync()
    {
        lock (gate) return loading ??= LoadAsync();
    }

    private async Task LoadAsync()
    {
        try
        {
            await Task.Yield(); // never run the query under the caller's lock
            var started = Stopwatch.GetTimestamp();
            var rows = await store.LoadAllAsync();
            lock (gate)
            {
                models = Merge(models, rows);
                if (loadedAt == 0 || started > loadedAt) Volatile.Write(ref loadedAt, started);
            }
        }
        finally
        {
            lock (gate) loading = null;
        }
    }

    /// <summary>Reloads every <see cref="RefreshPeriod"/> until stopped; a failed load is logged and retried.</summary>
    internal async Task RefreshLoopAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(RefreshPeriod);
        try
        {
            do
            {
                try
                {
                    await ReloadAsync();
                }
                catch (Exception exception) when (!stopping.IsCancellationRequested)
                {
                    LogRefreshFailed(logger, exception, exception.GetType().Name, Lease);
                }
            }
            while (await timer.WaitForNextTickAsync(stopping));
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private static Dictionary<Guid, ModelPrice[]> Merge(Dictionary<Guid, ModelPrice[]> current, IEnumerable<ModelPrice> rows)
    {
        var next = new Dictionary<Guid, ModelPrice[]>(current);
        foreach (var group in rows.GroupBy(r => r.ModelId))
        {
            var known = next.GetValueOrDefault(group.Key) ?? [];
            var added = group.Where(r => !known.Any(k => k.Id == r.Id)).ToArray();
            if (added.Length == 0) continue;
            // The same order the pricing grain keeps: the last row in effect wins.
            next[group.Key] = [.. known.Concat(added).DistinctBy(p => p.Id).OrderBy(p => p.EffectiveFrom).ThenBy(p => p.CreatedAt)];
        }

        return next;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot reload the price book ({ExceptionType}); usage pricing fails once the last load is older than {Lease}")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception, string exceptionType, TimeSpan lease);
}
