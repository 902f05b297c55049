namespace Billing.Accounts;

/// <summary>
/// A grant as its account holds it (the <c>credit_grant</c> row). The account keeps its open grants (scheduled, or
/// active with something left) in memory; depleted, expired and voided grants live in the database only.
/// </summary>
public sealed record CreditGrant(
    Guid GrantId,
    GrantCategory Category,
    int Priority,
    decimal Amount,
    decimal Remaining,
    string Currency,
    DateTimeOffset EffectiveAt,
    DateTimeOffset? ExpiresAt,
    GrantStatus Status,
    string? Description,
    Guid? CreditId,
    DateTimeOffset CreatedAt)
{
    /// <summary>Still part of the account's future: it may count, be drawn on, expire or be voided.</summary>
    public bool IsOpen => Status is GrantStatus.Scheduled or GrantStatus.Active;

    public GrantView ToView(Guid accountId, AccountKind kind) => new(
        GrantId, accountId, kind, Category, Priority, Amount, Remaining, Currency, EffectiveAt, ExpiresAt, Status, Description, CreatedAt);
}

/// <summary>
/// What one history row does to one grant: <see cref="Amount"/> with the row's sign (a charge's changes add up to
/// its amount), and the grant after it. <see cref="Created"/> when the row brings the grant into being.
/// </summary>
public sealed record GrantChange(Guid GrantId, decimal Amount, CreditGrant After, bool Created = false);

/// <summary>
/// One <c>credit_grant_entry</c> row: what history row <see cref="Seq"/> moved on a grant (<see cref="Order"/>: its
/// place in the row). Only rows that moved two grants or more have entries; a row that moved one names it in its own
/// <c>grant_id</c> (<see cref="LedgerRow.GrantInRow"/>). The <c>credit_grant_movement</c> view reads both.
/// </summary>
public sealed record GrantEntry(long Seq, int Order, Guid GrantId, decimal Amount);

/// <summary>The grant rows a commit writes: grants it creates, grants it changes (final states) and the entries of its rows.</summary>
public sealed record GrantWrites(IReadOnlyList<CreditGrant> Created, IReadOnlyList<CreditGrant> Changed, IReadOnlyList<GrantEntry> Entries)
{
    public static readonly GrantWrites None = new([], [], []);

    /// <summary>
    /// From a batch's rows (in order), then the grant changes that have no row (a grant scheduled for later, or voided
    /// before it counted): the last state of each grant wins.
    /// </summary>
    public static GrantWrites From(IReadOnlyList<LedgerRow> rows, IReadOnlyList<(CreditGrant Grant, bool Created)> withoutRow)
    {
        if (withoutRow.Count == 0 && rows.All(r => r.GrantChanges.Count == 0)) return None;
        var final = new Dictionary<Guid, CreditGrant>();
        var created = new HashSet<Guid>();
        var entries = new List<GrantEntry>();
        foreach (var row in rows)
        {
            var inRow = row.GrantInRow is not null;
            for (var i = 0; i < row.GrantChanges.Count; i++)
            {
                var change = row.GrantChanges[i];
                final[change.GrantId] = change.After;
                if (change.Created) created.Add(change.GrantId);
                if (!inRow) entries.Add(new GrantEntry(row.Sequence, i, change.GrantId, change.Amount));
            }
        }

        foreach (var (grant, isNew) in withoutRow)
        {
            final[grant.GrantId] = grant;
            if (isNew) created.Add(grant.GrantId);
        }

        return new GrantWrites(
            final.Values.Where(g => created.Contains(g.GrantId)).ToArray(),
            final.Values.Where(g => !created.Contains(g.GrantId)).ToArray(),
            entries);
    }

    /// <summary>The grants created by rows alone (an account's opening credit).</summary>
    public static GrantWrites From(IReadOnlyList<LedgerRow> rows) => From(rows, []);
}

/// <summary>
/// An account's open grants: a list with value equality, so that two account states with the same grants are equal
/// (a replay of the history equals the state it explains).
/// </summary>
public sealed class GrantSet(IReadOnlyList<CreditGrant> grants) : IReadOnlyList<CreditGrant>, IEquatable<GrantSet>
{
    public static readonly GrantSet Empty = new([]);

    public int Count => grants.Count;

    public CreditGrant this[int index] => grants[index];

    public IEnumerator<CreditGrant> GetEnumerator() => grants.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public bool Equals(GrantSet? other) => other is not null && grants.SequenceEqual(other);

    public override bool Equals(object? obj) => obj is GrantSet other && Equals(other);

    public override int GetHashCode() => grants.Count;

    public override string ToString() => $"[{string.Join(", ", grants.Select(g => $"{g.GrantId} {g.Status} {g.Remaining}/{g.Amount}"))}]";
}
