using System.Text.Json;
using Billing.Storage;

namespace Billing.Accounts;

/// <summary>
/// The grant rules of one account, as pure functions beside <see cref="AccountLedger"/>: which grants a charge draws on
/// (the spending order of API.md), what time makes due (a grant coming into effect, a grant expiring), a void. Each
/// returns the history row (or the row's <see cref="GrantChange"/>s) that explains it, so the balance stays the sum
/// of the history (I1) and the sum of the active grants' remaining (G1).
/// </summary>
public static class CreditGrants
{
    public const int DefaultPriority = GrantDefaults.Priority;

    /// <summary>
    /// The spending order (G3): lowest priority, then the soonest expiry (none last), then promotional before paid,
    /// then the oldest effectiveAt, then the grant id.
    /// </summary>
    public static readonly IComparer<CreditGrant> SpendingOrder = Comparer<CreditGrant>.Create((a, b) =>
    {
        var c = a.Priority.CompareTo(b.Priority);
        if (c != 0) return c;
        c = (a.ExpiresAt, b.ExpiresAt) switch
        {
            (null, null) => 0,
            (null, _) => 1,
            (_, null) => -1,
            var (x, y) => x.Value.CompareTo(y.Value),
        };
        if (c != 0) return c;
        c = a.Category.CompareTo(b.Category); // Promotional = 0 before Paid = 1
        if (c != 0) return c;
        c = a.EffectiveAt.CompareTo(b.EffectiveAt);
        return c != 0 ? c : a.GrantId.CompareTo(b.GrantId);
    });

    /// <summary>The category of an automatic or top-up credit: signup, first-project and promotional credits are promotional.</summary>
    public static GrantCategory CategoryOf(string creditReason) => creditReason is HistoryReasons.SignupCredit or HistoryReasons.FirstProjectCredit
        or HistoryReasons.PromotionalCredit ? GrantCategory.Promotional : GrantCategory.Paid;

    /// <summary>The grant a credit row creates: in effect at once, priority 50, expiring at <paramref name="expiresAt"/> if given.</summary>
    public static GrantChange FromCredit(AccountState state, AccountCredit credit, DateTimeOffset now, DateTimeOffset? expiresAt)
    {
        var grantId = Guid.NewGuid();
        var grant = new CreditGrant(grantId, CategoryOf(credit.Reason), DefaultPriority, credit.Amount, credit.Amount, state.Currency,
            now, expiresAt, GrantStatus.Active, null, credit.CreditId, now);
        return new GrantChange(grantId, credit.Amount, grant, Created: true);
    }

    /// <summary>
    /// Draws <paramref name="amount"/> from the active grants in spending order: the changes (negative amounts) or
    /// null when a remaining would not be exact. Balance not held by any grant — only in accounts built in memory
    /// without grants, since every stored account's balance is its grants' (migration 0007) — is drawn last.
    /// <para>
    /// Holds (issue 11) reserve against the balance, not against grants: when they land, a capture draws here at
    /// capture time, and a grant that expires while holds are open may leave the held amount above the balance —
    /// the hold code decides what a capture may then take (see the seam note in the notes/README).
    /// </para>
    /// </summary>
    public static IReadOnlyList<GrantChange>? Draw(IReadOnlyList<CreditGrant> grants, decimal amount)
    {
        if (amount <= 0 || grants.Count == 0) return [];
        var active = grants.Where(g => g.Status == GrantStatus.Active && g.Remaining > 0).ToList();
        if (active.Count > 1) active.Sort(SpendingOrder);
        var changes = new List<GrantChange>(Math.Min(active.Count, 4));
        var left = amount;
        foreach (var grant in active)
        {
            if (left == 0) break;
            var take = Math.Min(left, grant.Remaining);
            if (ExactDecimal.TrySubtract(grant.Remaining, take) is not { } remaining) return null;
            if (ExactDecimal.TrySubtract(left, take) is not { } stillLeft) return null;
            left = stillLeft;
            changes.Add(new GrantChange(grant.GrantId, -take, grant with
            {
                Remaining = remaining,
                Status = remaining == 0 ? GrantStatus.Depleted : GrantStatus.Active,
            }));
        }

        return changes;
    }

    /// <summary>The open grants after a row's changes: a grant that is no longer open leaves memory.</summary>
    public static GrantSet Apply(GrantSet grants, IReadOnlyList<GrantChange> changes)
    {
        if (changes.Count == 0) return grants;
        var result = grants.ToList();
        foreach (var change in changes) Put(result, change.After);
        return new GrantSet(result);
    }

    /// <summary>The open grants with <paramref name="grant"/> put in (replacing the one with its id), or taken out once it is not open.</summary>
    public static GrantSet Put(GrantSet grants, CreditGrant grant)
    {
        var result = grants.ToList();
        Put(result, grant);
        return new GrantSet(result);
    }

    private static void Put(List<CreditGrant> grants, CreditGrant grant)
    {
        var index = grants.FindIndex(g => g.GrantId == grant.GrantId);
        var keep = grant.IsOpen && !(grant.Status == GrantStatus.Active && grant.Remaining == 0);
        if (index >= 0)
        {
            if (keep) grants[index] = grant;
            else grants.RemoveAt(index);
        }
        else if (keep)
        {
            grants.Add(grant);
        }
    }

    /// <summary>The soonest moment something is due in these grants (effect or expiry), or null.</summary>
    public static DateTimeOffset? NextDue(IReadOnlyList<CreditGrant> grants)
    {
        DateTimeOffset? next = null;
        foreach (var grant in grants)
        {
            var at = grant.Status == GrantStatus.Scheduled ? grant.EffectiveAt : grant.ExpiresAt;
            if (at is { } due && (next is null || due < next)) next = due;
        }

        return next;
    }

    public static bool HasDue(IReadOnlyList<CreditGrant> grants, DateTimeOffset now) => NextDue(grants) is { } due && due <= now;

    /// <summary>
    /// Appends what time has made due at <paramref name="batch"/>'s now, oldest first: a <c>grant_credit</c> row
    /// (+amount) for each scheduled grant whose effectiveAt has come, a <c>grant_expired</c> row (−remaining) for
    /// each grant whose expiresAt has come, with its <c>grant.expired</c> event (E1). Called when a batch opens, before
    /// any operation is decided against it; <paramref name="afterEachRow"/> sees the batch after each row (balance
    /// alerts judge every row's crossing, as E1 does).
    /// </summary>
    internal static void AppendDue(LedgerBatch batch, Action<LedgerBatch>? afterEachRow = null)
    {
        var now = batch.Now;
        if (!HasDue(batch.State.Grants, now)) return;
        var events = new List<(DateTimeOffset At, int Kind, CreditGrant Grant)>();
        foreach (var grant in batch.State.Grants)
        {
            if (grant.Status == GrantStatus.Scheduled && grant.EffectiveAt <= now) events.Add((grant.EffectiveAt, 0, grant));
            if (grant.ExpiresAt is { } expiry && expiry <= now) events.Add((expiry, 1, grant));
        }

        foreach (var (_, kind, grant) in events.OrderBy(e => e.At).ThenBy(e => e.Kind).ThenBy(e => e.Grant.GrantId))
        {
            var current = batch.State.Grants.FirstOrDefault(g => g.GrantId == grant.GrantId);
            if (current is null) continue; // depleted by an earlier event of this batch
            // A grant that comes due names no credit id in its row (an admin grant has none; only a top-up's grant does,
            // and that one counts at once): a credit id a top-up took since the grant was given can never make this
            // row, and with it every later write of the account, fail on the history's unique credit ids.
            var row = kind == 0
                ? Row(batch.State, now, current.Amount, GrantReasons.GrantCredit, current.CreditId, current,
                    current with { Status = GrantStatus.Active }, new { grantId = current.GrantId, effectiveAt = current.EffectiveAt })
                : Row(batch.State, now, -current.Remaining, GrantReasons.GrantExpired, null, current,
                    current with { Remaining = 0m, Status = GrantStatus.Expired }, new { grantId = current.GrantId, expiresAt = current.ExpiresAt });
            if (row is null)
            {
                // Time events have no caller to refuse, and one that failed would fail every later batch of the account.
                // A grant coming due: the balance has grown since the grant was accepted (which checked it) so far that
                // it can no longer hold it exactly (CanGiveBack); it is voided before it counts, and the account goes on.
                // An expiry: never for an account whose additions all passed CanGiveBack; one whose balance an older
                // version shortened keeps the grant open (spent first, as the soonest to expire) rather than fail.
                if (kind == 0) batch.PutGrant(current with { Remaining = 0m, Status = GrantStatus.Voided }, created: false);
                continue;
            }

            batch.Append(row);
            // A grant in the open set that expires always has something left (a depleted one left the set), so every
            // grant_expired row has its one event, written by the same statement.
            if (kind == 1)
            {
                batch.Events.Add(Billing.Events.BillingEvents.GrantExpired(batch.State, HoldLedger.Available(batch.State, now),
                    current.GrantId, current.Remaining, now));
            }

            afterEachRow?.Invoke(batch);
        }
    }

    /// <summary>The <c>grant_credit</c> row of a grant in effect now (an admin grant), or null when the balance cannot hold it exactly (<see cref="CanGiveBack"/>).</summary>
    public static LedgerRow? CreditRow(AccountState state, DateTimeOffset now, CreditGrant grant) =>
        Row(state, now, grant.Amount, GrantReasons.GrantCredit, grant.GrantId, grant, grant, new { grantId = grant.GrantId, effectiveAt = grant.EffectiveAt }, created: true);

    /// <summary>The <c>grant_voided</c> row taking back what is left of an active grant (null only for a balance an older version shortened: <see cref="CanGiveBack"/>).</summary>
    public static LedgerRow? VoidRow(AccountState state, DateTimeOffset now, CreditGrant grant) =>
        Row(state, now, -grant.Remaining, GrantReasons.GrantVoided, null, grant, grant with { Remaining = 0m, Status = GrantStatus.Voided },
            new { grantId = grant.GrantId });

    /// <summary>
    /// Whether the balance <paramref name="row"/> leaves can give back exactly what is left of the active grants after it,
    /// one after another, whichever expires or is voided first. It holds their sum (G1), so each such step leaves a sum
    /// of some of them: never more than the balance, never with more decimals than the finest of them. All of those fit
    /// a decimal when the balance does with that many decimals. Checked for every row that adds to the balance (a row
    /// that takes from it keeps this true); without it a sum shortened to fit (<see cref="ExactDecimal.TryAdd"/> drops
    /// trailing zeros) could leave a later expiry with more digits than a decimal has, and the account stuck.
    /// </summary>
    public static bool CanGiveBack(AccountState state, LedgerRow row)
    {
        var decimals = 0;
        foreach (var grant in Apply(state.Grants, row.GrantChanges))
        {
            if (grant.Status == GrantStatus.Active) decimals = Math.Max(decimals, ExactDecimal.Decimals(grant.Remaining));
        }

        return ExactDecimal.FitsWith(row.BalanceAfter, decimals);
    }

    private static LedgerRow? Row(AccountState state, DateTimeOffset now, decimal amount, string reason, Guid? creditId,
        CreditGrant before, CreditGrant after, object details, bool created = false)
    {
        if (ExactDecimal.TryAdd(state.Balance, amount) is not { } balanceAfter) return null;
        var row = new LedgerRow(RowIds.New(), state.Version + 1, amount, 0m, state.Currency, reason, balanceAfter, state.MonthUsed,
            null, null, null, null, null, creditId, JsonSerializer.Serialize(details), now)
        {
            GrantChanges = [new GrantChange(before.GrantId, amount, after, created)],
        };
        return amount <= 0 || CanGiveBack(state, row) ? row : null;
    }
}
