using System.Collections.Immutable;

namespace Billing.Accounts;

/// <summary>
/// An account's active holds (immutable): by id, by expiry, and their amounts added up. What the account holds at a
/// moment is that total less the holds already past their expiry, found from the earliest expiry on (usually none),
/// so deciding a usage or a hold costs the same with ten active holds or ten thousand. (Adding every hold up on every
/// decision made one account with 10,000 open holds 9× slower: README, "Many active holds on one account".)
/// </summary>
public sealed class ActiveHolds
{
    public static ActiveHolds Empty { get; } = new(ImmutableDictionary<Guid, HoldView>.Empty, ImmutableSortedSet<(DateTimeOffset, Guid)>.Empty, 0m);

    private readonly ImmutableDictionary<Guid, HoldView> byId;
    private readonly ImmutableSortedSet<(DateTimeOffset ExpiresAt, Guid HoldId)> byExpiry;

    private ActiveHolds(ImmutableDictionary<Guid, HoldView> byId, ImmutableSortedSet<(DateTimeOffset, Guid)> byExpiry, decimal total)
    {
        this.byId = byId;
        this.byExpiry = byExpiry;
        Total = total;
    }

    /// <summary>The amounts of every active hold, those past their expiry included.</summary>
    public decimal Total { get; }

    public int Count => byId.Count;

    public bool IsEmpty => byId.IsEmpty;

    /// <summary>Every active hold, in no particular order.</summary>
    public IEnumerable<HoldView> All => byId.Values;

    /// <summary>When the first of them expires; null when there is none.</summary>
    public DateTimeOffset? FirstExpiry => byExpiry.IsEmpty ? null : byExpiry.Min.ExpiresAt;

    public static ActiveHolds Of(IEnumerable<HoldView> holds) => holds.Aggregate(Empty, (set, hold) => set.With(hold));

    public HoldView? Find(Guid holdId) => byId.GetValueOrDefault(holdId);

    public bool Contains(Guid holdId) => byId.ContainsKey(holdId);

    /// <summary>The holds past their expiry at <paramref name="now"/> (reserving nothing since), earliest first.</summary>
    public IEnumerable<HoldView> ExpiredAt(DateTimeOffset now)
    {
        foreach (var (expiresAt, holdId) in byExpiry)
        {
            if (expiresAt > now) yield break;
            yield return byId[holdId];
        }
    }

    /// <summary>What the holds reserve at <paramref name="now"/>: those past their expiry no longer count (H2).</summary>
    public decimal HeldAt(DateTimeOffset now)
    {
        if (IsEmpty) return 0m;
        if (now < byExpiry.Min.ExpiresAt) return Total; // the usual case, on every decision: no enumerator to allocate
        var held = Total;
        foreach (var expired in ExpiredAt(now)) held -= expired.Amount;
        return held;
    }

    /// <summary>The set with <paramref name="hold"/> added, or in place of the one of its id.</summary>
    public ActiveHolds With(HoldView hold)
    {
        var set = Without(hold.HoldId);
        return new(set.byId.Add(hold.HoldId, hold), set.byExpiry.Add((hold.ExpiresAt, hold.HoldId)), set.Total + hold.Amount);
    }

    /// <summary>The set without the hold of <paramref name="holdId"/> (the same set when it has none).</summary>
    public ActiveHolds Without(Guid holdId)
    {
        if (!byId.TryGetValue(holdId, out var hold)) return this;
        // An empty set is the empty set: its total starts again from an exact 0, not from a sum that came back to zero.
        if (byId.Count == 1) return Empty;
        return new(byId.Remove(holdId), byExpiry.Remove((hold.ExpiresAt, holdId)), Total - hold.Amount);
    }
}
