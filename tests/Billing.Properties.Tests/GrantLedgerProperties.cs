using Billing.Accounts;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Billing.Properties.Tests;

/// <summary>One grant operation, or a charge or top-up beside them, as the account grain receives it.</summary>
public abstract record GrantOp
{
    /// <summary>
    /// An admin grant. Times are whole hours after the scenario's start, so that grants share expiries and effective
    /// times (the spending order's ties); <see cref="EffectiveHour"/> null = now, <see cref="ExpiresHour"/> null = never.
    /// </summary>
    public sealed record Give(decimal Amount, GrantCategory Category, int Priority, int? EffectiveHour, int? ExpiresHour) : GrantOp;

    /// <summary>The same grant id again (a retry) of the <see cref="Index"/>-th admin grant given so far (modulo), while it is open.</summary>
    public sealed record GiveAgain(int Index) : GrantOp;

    public sealed record Charge(decimal Cost) : GrantOp;

    public sealed record TopUp(decimal Amount) : GrantOp;

    /// <summary>Voids the <see cref="Index"/>-th grant of the account so far (modulo; the signup grant is the first).</summary>
    public sealed record Void(int Index) : GrantOp;
}

public sealed record GrantBatch(TimeSpan Advance, GrantOp[] Ops)
{
    public override string ToString() => $"+{Advance} [{string.Join(", ", Ops.Select(o => o.ToString()))}]";
}

public sealed record GrantScenario(decimal Quota, int? SignupExpiresHour, GrantBatch[] Batches)
{
    public override string ToString() =>
        $"quota {Quota}, signup expires {(SignupExpiresHour is { } h ? $"+{h}h" : "never")}\n  " + string.Join("\n  ", Batches.Select(b => b.ToString()));
}

/// <summary>What the spending order compares of a grant, and the order as README "Spending order" states it (written apart from the production comparer).</summary>
public readonly record struct SpendingKey(int Priority, DateTimeOffset? ExpiresAt, GrantCategory Category, DateTimeOffset EffectiveAt, Guid Id)
{
    /// <summary>Lowest priority, soonest expiry (never last), promotional before paid, oldest effectiveAt, then the id as PostgreSQL orders uuids (by their text).</summary>
    public static int Compare(SpendingKey a, SpendingKey b)
    {
        if (a.Priority != b.Priority) return a.Priority < b.Priority ? -1 : 1;
        if (a.ExpiresAt != b.ExpiresAt)
        {
            if (a.ExpiresAt is null) return 1;
            if (b.ExpiresAt is null) return -1;
            return a.ExpiresAt < b.ExpiresAt ? -1 : 1;
        }

        if (a.Category != b.Category) return a.Category == GrantCategory.Promotional ? -1 : 1;
        if (a.EffectiveAt != b.EffectiveAt) return a.EffectiveAt < b.EffectiveAt ? -1 : 1;
        return string.CompareOrdinal(a.Id.ToString("D"), b.Id.ToString("D"));
    }
}

/// <summary>
/// The grant rules' real decisions (the grain's <c>LedgerBatch</c> opened as <c>StoredAccountLedger.Open</c> opens it,
/// then each operation's own <c>Decide</c>) for random sequences of grants (both categories, priorities 0–100, in
/// effect now, earlier or later, expiring or not), charges, top-ups, voids, retries and time moving on (future grants
/// coming into effect, grants expiring), checked against an independent model of the grants:
/// <list type="bullet">
/// <item>each charge draws exactly what a greedy walk over the active grants in the spending order of README
/// "Spending order" takes (lowest priority, soonest expiry, promotional before paid, oldest effectiveAt, grantId),
/// only from grants in effect and not expired at the charge's time, after the quota;</item>
/// <item>G1 after every operation: balance = sum of the active grants' remaining = the model's;</item>
/// <item>G2 after every commit, on the grant rows the commits write: 0 ≤ remaining ≤ amount, amount − remaining =
/// what the grant's entries took, credited once with its amount, statuses consistent; each row's entries add up to
/// its amount; one <c>grant.expired</c> event per <c>grant_expired</c> row (E1);</item>
/// <item>the account equals a replay of its history rows, and its open grants are those the written grant rows
/// leave open (what a reload reads).</item>
/// </list>
/// </summary>
public class GrantLedgerProperties
{
    public static readonly DateTimeOffset Start = new(2026, 3, 1, 9, 0, 0, TimeSpan.Zero);

    private static readonly Gen<decimal> Money = Gen.Frequency(
        (6, from c in Gen.Choose(1, 200_000) select c / 10_000m),                    // 0.0001 … 20.0000
        (2, Gen.Elements(0.5m, 1m, 2m, 5m, 10m)),
        (1, from m in Gen.Choose(1, 99_999_999) select m / 100_000_000m));           // 8 decimals

    private static readonly Gen<int?> Hour = Gen.Choose(0, 72).Select(h => (int?)h);

    private static readonly Gen<GrantOp> Op = Gen.Frequency(
        (5, from a in Money
            from cat in Gen.Elements(GrantCategory.Promotional, GrantCategory.Paid)
            from p in Gen.Frequency((3, Gen.Elements(0, 10, 50, 50, 100)), (2, Gen.Choose(0, 100)))
            from eff in Gen.Frequency((3, Gen.Constant<int?>(null)), (2, Hour))
            from exp in Gen.Frequency((2, Gen.Constant<int?>(null)), (3, Gen.Elements<int?>(2, 6, 24, 48)), (2, Hour))
            select (GrantOp)new GrantOp.Give(a, cat, p, eff, exp)),
        (1, from i in Gen.Choose(0, 30) select (GrantOp)new GrantOp.GiveAgain(i)),
        (7, from c in Gen.Frequency((5, from c in Gen.Choose(0, 80_000) select c / 10_000m), (1, Money)) select (GrantOp)new GrantOp.Charge(c)),
        (1, from a in Money select (GrantOp)new GrantOp.TopUp(a)),
        (2, from i in Gen.Choose(0, 30) select (GrantOp)new GrantOp.Void(i)));

    private static readonly Gen<TimeSpan> Advance = Gen.Frequency(
        (4, Gen.Constant(TimeSpan.Zero)),
        (3, from s in Gen.Choose(1, 3_600) select TimeSpan.FromSeconds(s)),
        (3, from h in Gen.Choose(1, 30) select TimeSpan.FromHours(h)),
        (1, Gen.Elements(TimeSpan.FromHours(2), TimeSpan.FromHours(24))));                 // exactly onto a grid hour

    public static readonly Gen<GrantScenario> Scenario =
        from quota in Gen.Elements(0m, 0m, 0m, 3m)
        from signup in Gen.Frequency((2, Gen.Constant<int?>(null)), (1, Gen.Elements<int?>(1, 24, 48)))
        from batches in (from adv in Advance from ops in Gen.ListOf(Op).Select(l => l.Take(8).ToArray()) select new GrantBatch(adv, ops))
            .ListOf().Select(l => l.Take(14).ToArray())
        select new GrantScenario(quota, signup, batches);

    /// <summary>The model's grant: what the rules say it is, written without the production code.</summary>
    private sealed class ModelGrant
    {
        public required Guid Id { get; init; }

        public required GrantCategory Category { get; init; }

        public required int Priority { get; init; }

        public required decimal Amount { get; init; }

        public required DateTimeOffset EffectiveAt { get; init; }

        public required DateTimeOffset? ExpiresAt { get; init; }

        public GrantInput? Input { get; init; }

        public decimal Remaining { get; set; }

        public GrantStatus Status { get; set; }

        public bool IsOpen => Status is GrantStatus.Scheduled or GrantStatus.Active;

        public SpendingKey Key => new(Priority, ExpiresAt, Category, EffectiveAt, Id);

        public override string ToString() => $"{Id} {Category} p{Priority} eff {EffectiveAt:O} exp {ExpiresAt:O} {Status} {Remaining}/{Amount}";
    }

    private static int SpendingOrder(ModelGrant a, ModelGrant b) => SpendingKey.Compare(a.Key, b.Key);

    public static string? Check(GrantScenario s)
    {
        var user = Guid.NewGuid();
        var empty = new AccountState(user, AccountKind.User, null, 0m, "USD", true, false, 0m, 0m, null, null, 0, Start, Start);
        var signupRow = AccountLedger.Credit(empty, new AccountCredit(AccountLedger.SignupCredit, HistoryReasons.SignupCredit, null), Start,
            s.SignupExpiresHour is { } sh ? Start.AddHours(sh) : null).Row!;
        var state = AccountLedger.Apply(empty, signupRow);
        var rows = new List<LedgerRow> { signupRow };
        var signupGrant = signupRow.GrantChanges.Single().After;
        var model = new List<ModelGrant>
        {
            new()
            {
                Id = signupGrant.GrantId, Category = GrantCategory.Promotional, Priority = 50, Amount = 10m, EffectiveAt = Start,
                ExpiresAt = s.SignupExpiresHour is { } h ? Start.AddHours(h) : null, Remaining = 10m, Status = GrantStatus.Active,
            },
        };
        if (signupGrant.Category != GrantCategory.Promotional || signupGrant.Priority != 50 || signupGrant.ExpiresAt != model[0].ExpiresAt)
            return $"signup grant {signupGrant}";

        // The grant rows as the commits write them (credit_grant, credit_grant_entry).
        var table = new Dictionary<Guid, CreditGrant>();
        var entries = new List<GrantEntry>();
        Commit(GrantWrites.From([signupRow]), [signupRow], table, entries);
        var now = Start;
        if (s.Quota > 0)
        {
            var plan = new LedgerBatch(state, now);
            if (Decided(new PlanChangeOperation(new PlanChange(true, s.Quota)), plan) is not { IsOk: true }) return "plan change refused";
            rows.AddRange(plan.Rows);
            state = plan.State;
        }

        // At the end, long after every grid hour: everything scheduled has come into effect, everything expiring has expired.
        var batches = s.Batches.Append(new GrantBatch(TimeSpan.FromDays(10), []));
        foreach (var input in batches)
        {
            now += input.Advance;
            // As StoredAccountLedger.Open: the cycle reset, then what time has made due.
            var batch = new LedgerBatch(state, now);
            if (AccountLedger.CycleReset(batch.State, now) is { } reset) batch.Append(reset, AccountLedger.ApplyCycleReset);
            var rowsBeforeDue = batch.Rows.Count;
            CreditGrants.AppendDue(batch);
            if (ApplyTime(model, now) is var dueRows && batch.Rows.Count - rowsBeforeDue != dueRows)
                return $"at {now:O}: {batch.Rows.Count - rowsBeforeDue} rows for what time made due, the model expects {dueRows}";
            if (Compare(model, batch.State, $"after time moved to {now:O}") is { } timeFailure) return timeFailure;

            foreach (var op in input.Ops)
            {
                var rowsBefore = batch.Rows.Count;
                var withoutRowBefore = batch.GrantsWithoutRow.Count;
                var before = batch.State;
                var failure = op switch
                {
                    GrantOp.Give g => CheckGive(g, batch, model),
                    GrantOp.GiveAgain g => CheckGiveAgain(g, batch, model),
                    GrantOp.Charge c => CheckCharge(c, batch, model),
                    GrantOp.TopUp t => CheckTopUp(t, batch, model),
                    GrantOp.Void v => CheckVoid(model[v.Index % model.Count], batch),
                    _ => "unknown operation",
                };
                failure ??= Compare(model, batch.State, "");
                if (failure is null && batch.Rows.Count == rowsBefore && batch.GrantsWithoutRow.Count == withoutRowBefore && !Equal(before, batch.State))
                    failure = "the account changed without a row or a grant change";
                if (failure is not null) return $"{op} at {now:O}: {failure}";
            }

            // The batch commits: its statement writes the rows, the grant rows and the events.
            var writes = batch.ToCommit().GrantWrites;
            if (Commit(writes, batch.Rows, table, entries) is { } g2) return $"batch at {now:O}: {g2}";
            var expiredRows = batch.Rows.Where(r => r.Reason == GrantReasons.GrantExpired).Select(r => r.Sequence).ToList();
            var expiredEvents = batch.Events.Where(e => e.Type == BillingEventTypes.GrantExpired).Select(e => e.AccountSeq ?? -1).ToList();
            if (!expiredRows.SequenceEqual(expiredEvents)) return $"batch at {now:O}: grant_expired rows [{string.Join(", ", expiredRows)}] but grant.expired events at [{string.Join(", ", expiredEvents)}] (E1)";
            rows.AddRange(batch.Rows);
            state = batch.State;
            if (CheckStored(state, rows, table, entries, model) is { } stored) return $"after the batch at {now:O}: {stored}";
        }

        if (model.Any(g => g.Status == GrantStatus.Scheduled || (g.Status == GrantStatus.Active && g.ExpiresAt is not null)))
            return "ten days after the last grid hour a grant is still scheduled or active with an expiry";
        return null;
    }

    /// <summary>What time makes due at <paramref name="now"/>, by the rules: the rows it writes (one per effect, one per expiry with something left).</summary>
    private static int ApplyTime(List<ModelGrant> model, DateTimeOffset now)
    {
        var rows = 0;
        foreach (var g in model)
        {
            if (g.Status == GrantStatus.Scheduled && g.EffectiveAt <= now)
            {
                g.Status = GrantStatus.Active;
                g.Remaining = g.Amount;
                rows++;
            }

            if (g.Status == GrantStatus.Active && g.ExpiresAt <= now)
            {
                g.Status = GrantStatus.Expired;
                g.Remaining = 0m;
                rows++;
            }
        }

        return rows;
    }

    private static string? CheckGive(GrantOp.Give g, LedgerBatch batch, List<ModelGrant> model)
    {
        var now = batch.Now;
        var effectiveAt = g.EffectiveHour is { } e ? Start.AddHours(e) : now;
        DateTimeOffset? expiresAt = g.ExpiresHour is { } x ? Start.AddHours(x) : null;
        var input = new GrantInput(Guid.NewGuid(), g.Amount, g.Category, g.Priority, g.EffectiveHour is null ? null : effectiveAt, expiresAt, null);
        var rowsBefore = batch.Rows.Count;
        var answer = Decided(new GrantOperation(input), batch);
        if (expiresAt <= effectiveAt)
        {
            if (answer.Problem?.Status != BillingStatus.InvalidInput) return $"a grant expiring at {expiresAt:O}, not after its effect at {effectiveAt:O}, was answered {answer.Problem?.Status.ToString() ?? "ok"}";
            return batch.Rows.Count == rowsBefore ? null : "a refused grant wrote a row";
        }

        if (!answer.IsOk) return $"grant refused: {answer.Problem}";
        var grant = new ModelGrant
        {
            Id = input.GrantId, Category = g.Category, Priority = g.Priority, Amount = g.Amount, EffectiveAt = effectiveAt, ExpiresAt = expiresAt,
            Input = input, Remaining = g.Amount, Status = GrantStatus.Scheduled,
        };
        model.Add(grant);
        var expectedRows = 0;
        if (effectiveAt <= now)
        {
            grant.Status = GrantStatus.Active;
            expectedRows++;
            if (expiresAt <= now)
            {
                // Given after it had already expired: it counted for the moment between, then what is left leaves.
                grant.Status = GrantStatus.Expired;
                grant.Remaining = 0m;
                expectedRows++;
            }
        }

        if (batch.Rows.Count - rowsBefore != expectedRows) return $"{batch.Rows.Count - rowsBefore} rows, expected {expectedRows}";
        if (expectedRows > 0 && (batch.Rows[rowsBefore] is not { Reason: GrantReasons.GrantCredit } credit || credit.Amount != g.Amount
            || credit.GrantChanges is not [{ Created: true } change] || change.GrantId != input.GrantId || change.Amount != g.Amount))
            return $"the grant's credit row is {batch.Rows[rowsBefore]}";
        var view = answer.Value!;
        if (!view.Created || view.Grant.GrantId != input.GrantId || view.Grant.Status != grant.Status || view.Grant.Remaining != grant.Remaining)
            return $"answered {view}, the model has {grant}";
        return null;
    }

    private static string? CheckGiveAgain(GrantOp.GiveAgain g, LedgerBatch batch, List<ModelGrant> model)
    {
        // The pure rules see the open grants only; a retry of an ended grant is answered from the database (GrantOperation.SettleStoredAsync).
        var given = model.Where(m => m.Input is not null).ToList();
        if (given.Count == 0) return null;
        var grant = given[g.Index % given.Count];
        if (!grant.IsOpen) return null;
        var rowsBefore = batch.Rows.Count;
        var withoutRow = batch.GrantsWithoutRow.Count;
        var answer = Decided(new GrantOperation(grant.Input!), batch);
        if (answer is not { IsOk: true, Value.Created: false } || answer.Value!.Grant.GrantId != grant.Id) return $"a retry was answered {answer.Value?.ToString() ?? answer.Problem!.ToString()}";
        return batch.Rows.Count == rowsBefore && batch.GrantsWithoutRow.Count == withoutRow ? null : "a retry granted again";
    }

    /// <summary>
    /// A charge: quota first, then a greedy walk over the model's active grants in the spending order; refused only
    /// when quota and balance cannot cover it, and then nothing written.
    /// </summary>
    private static string? CheckCharge(GrantOp.Charge c, LedgerBatch batch, List<ModelGrant> model)
    {
        var before = batch.State;
        var now = batch.Now;
        var quotaLeft = AccountLedger.QuotaLeft(before.IsPro, before.MonthlyQuota, before.MonthUsed, before.CycleEnd, now);
        var fromBalance = c.Cost - Math.Min(c.Cost, quotaLeft);
        var charge = new AccountCharge(Guid.NewGuid(), HistoryReasons.AiUsagePersonal, c.Cost, "USD", Guid.NewGuid(), 1, 1, null);
        var rowsBefore = batch.Rows.Count;
        var answer = Decided(new ChargeOperation(charge), batch);
        var spendable = model.Where(g => g.Status == GrantStatus.Active).Sum(g => g.Remaining);
        if (!answer.IsOk)
        {
            if (answer.Problem!.Status != BillingStatus.InsufficientBalance) return $"refused with {answer.Problem}";
            if (fromBalance <= spendable) return $"refused {c.Cost} although the grants hold {spendable} (quota left {quotaLeft})";
            return batch.Rows.Count == rowsBefore ? null : "a refused charge wrote a row";
        }

        if (fromBalance > spendable) return $"charged {fromBalance} from the grants, which hold only {spendable}";
        if (batch.Rows.Count != rowsBefore + 1) return $"{batch.Rows.Count - rowsBefore} rows for one charge";
        var row = batch.Rows[^1];
        if (row.QuotaUsed != c.Cost - fromBalance || row.Amount != -fromBalance) return $"row quota {row.QuotaUsed}, amount {row.Amount}; expected quota {c.Cost - fromBalance}";

        // The draws the rules say: lowest priority, soonest expiry, promotional, oldest, id; each grant emptied before the next.
        var ordered = model.Where(g => g.Status == GrantStatus.Active && g.Remaining > 0).ToList();
        ordered.Sort(SpendingOrder);
        var expected = new List<(Guid, decimal)>();
        var left = fromBalance;
        foreach (var g in ordered)
        {
            if (left == 0) break;
            var take = Math.Min(left, g.Remaining);
            expected.Add((g.Id, -take));
            left -= take;
            g.Remaining -= take;
            if (g.Remaining == 0) g.Status = GrantStatus.Depleted;
        }

        var actual = row.GrantChanges.Select(d => (d.GrantId, d.Amount)).ToList();
        if (!actual.SequenceEqual(expected))
        {
            return $"draws [{string.Join(", ", actual)}], the spending order says [{string.Join(", ", expected)}]\n    active grants in order: "
                + string.Join("\n      ", ordered);
        }

        foreach (var d in row.GrantChanges)
        {
            var g = model.Single(m => m.Id == d.GrantId);
            if (g.EffectiveAt > now || g.ExpiresAt <= now) return $"drew on {g} at {now:O}, outside its time";
            if (d.Created || d.After.Remaining != g.Remaining || d.After.Status != g.Status) return $"draw leaves {d.After}, the model {g}";
        }

        if (row.GrantChanges.Sum(d => d.Amount) != row.Amount) return "the draws do not add up to the row's amount";
        return null;
    }

    private static string? CheckTopUp(GrantOp.TopUp t, LedgerBatch batch, List<ModelGrant> model)
    {
        var rowsBefore = batch.Rows.Count;
        var answer = Decided(new CreditOperation(new AccountCredit(t.Amount, HistoryReasons.TopUp, Guid.NewGuid())), batch);
        if (!answer.IsOk || batch.Rows.Count != rowsBefore + 1) return $"top-up: {answer.Problem}";
        if (batch.Rows[^1].GrantChanges is not [{ Created: true } change]) return "a top-up's row creates no grant";
        var g = change.After;
        if (g.Category != GrantCategory.Paid || g.Priority != 50 || g.ExpiresAt is not null || g.EffectiveAt != batch.Now || g.Amount != t.Amount || g.Status != GrantStatus.Active)
            return $"a top-up made {g}: expected a paid grant, priority 50, never expiring, in effect now";
        model.Add(new ModelGrant
        {
            Id = g.GrantId, Category = GrantCategory.Paid, Priority = 50, Amount = t.Amount, EffectiveAt = batch.Now, ExpiresAt = null,
            Remaining = t.Amount, Status = GrantStatus.Active,
        });
        return null;
    }

    private static string? CheckVoid(ModelGrant grant, LedgerBatch batch)
    {
        var rowsBefore = batch.Rows.Count;
        var withoutRow = batch.GrantsWithoutRow.Count;
        var answer = Decided(new VoidGrantOperation(grant.Id), batch);
        if (!grant.IsOpen)
        {
            // Ended before: a no-op, never a 404. Ended in this batch: answered as the batch leaves it; in a batch committed
            // before: null, and the grain answers the grant as stored (the account keeps no ended grants).
            var endedHere = batch.Rows.Any(r => r.GrantChanges.Any(c => c.GrantId == grant.Id)) || batch.GrantsWithoutRow.Any(g => g.Grant.GrantId == grant.Id);
            if (answer is null && endedHere) return $"void of a grant {grant.Status} in this very batch answered nothing";
            if (answer is { IsOk: false }) return $"void of an ended grant answered {answer.Problem}";
            if (answer is { Value: { } view } && (view.Status != grant.Status || view.Remaining != 0m)) return $"void of an ended {grant.Status} grant answered {view.Status} with {view.Remaining} left";
            return batch.Rows.Count == rowsBefore && batch.GrantsWithoutRow.Count == withoutRow ? null : "a void of an ended grant wrote something";
        }

        var left = grant.Remaining;
        var wasScheduled = grant.Status == GrantStatus.Scheduled;
        grant.Status = GrantStatus.Voided;
        grant.Remaining = 0m;
        if (answer is not { IsOk: true, Value.Status: GrantStatus.Voided, Value.Remaining: 0m }) return $"void answered {answer?.Value?.ToString() ?? answer?.Problem?.ToString() ?? "nothing"}";
        if (wasScheduled) return batch.Rows.Count == rowsBefore && batch.GrantsWithoutRow.Count == withoutRow + 1 ? null : "a scheduled grant's void wrote a row";
        if (batch.Rows.Count != rowsBefore + 1) return "an active grant's void wrote no row";
        var row = batch.Rows[^1];
        return row.Reason == GrantReasons.GrantVoided && row.Amount == -left && row.GrantChanges is [{ } c] && c.GrantId == grant.Id && c.Amount == -left
            ? null
            : $"void row {row.Reason} {row.Amount}, expected −{left}";
    }

    /// <summary>The account's open grants and balance against the model (G1 both ways).</summary>
    private static string? Compare(List<ModelGrant> model, AccountState state, string when)
    {
        var open = model.Where(g => g.IsOpen && !(g.Status == GrantStatus.Active && g.Remaining == 0)).OrderBy(g => g.Id).ToList();
        var held = state.Grants.OrderBy(g => g.GrantId).ToList();
        if (open.Count != held.Count || open.Zip(held).Any(p => !Same(p.First, p.Second)))
            return $"{when} open grants [{string.Join("; ", held.Select(g => $"{g.GrantId} {g.Status} {g.Remaining}/{g.Amount}"))}], the model's [{string.Join("; ", open)}]";
        var active = state.Grants.Where(g => g.Status == GrantStatus.Active).Sum(g => g.Remaining);
        var modelled = model.Where(g => g.Status == GrantStatus.Active).Sum(g => g.Remaining);
        if (state.Balance != active) return $"{when} G1: balance {state.Balance} != sum of active grants' remaining {active}";
        if (state.Balance != modelled) return $"{when} balance {state.Balance} != the model's {modelled}";
        if (state.Grants.Any(g => g.Status == GrantStatus.Active && g.Remaining <= 0)) return $"{when} an active grant with nothing left is still open";
        return null;
    }

    private static bool Same(ModelGrant m, CreditGrant g) =>
        m.Id == g.GrantId && m.Category == g.Category && m.Priority == g.Priority && m.Amount == g.Amount && m.Remaining == g.Remaining
        && m.EffectiveAt == g.EffectiveAt && m.ExpiresAt == g.ExpiresAt && m.Status == g.Status;

    /// <summary>
    /// Writes a commit's grant rows into the table and checks G2 on every grant and G1 on every row's movements:
    /// <paramref name="entries"/> gathers them as <c>credit_grant_movement</c> reads them (the entries, and each row
    /// that names its one grant itself).
    /// </summary>
    private static string? Commit(GrantWrites writes, IReadOnlyList<LedgerRow> rows, Dictionary<Guid, CreditGrant> table, List<GrantEntry> entries)
    {
        foreach (var g in writes.Created)
        {
            if (!table.TryAdd(g.GrantId, g)) return $"grant {g.GrantId} created twice";
        }

        foreach (var g in writes.Changed)
        {
            if (!table.ContainsKey(g.GrantId)) return $"grant {g.GrantId} changed before it was created";
            table[g.GrantId] = g;
        }

        entries.AddRange(writes.Entries);
        foreach (var row in rows)
        {
            if (row.GrantInRow is { } grant) entries.Add(new GrantEntry(row.Sequence, 0, grant, row.Amount));
        }

        var byGrant = entries.ToLookup(e => e.GrantId);
        foreach (var g in table.Values)
        {
            var mine = byGrant[g.GrantId].ToList();
            var credited = mine.Where(e => e.Amount > 0).ToList();
            var taken = -mine.Where(e => e.Amount < 0).Sum(e => e.Amount);
            if (g.Remaining < 0 || g.Remaining > g.Amount) return $"G2 {g.GrantId}: remaining {g.Remaining} outside [0, {g.Amount}]";
            if (credited.Count > 1 || (credited.Count == 1 && credited[0].Amount != g.Amount)) return $"G2 {g.GrantId}: credited [{string.Join(", ", credited)}] of {g.Amount}";
            if (credited.Count == 1 && g.Amount - g.Remaining != taken) return $"G2 {g.GrantId}: amount {g.Amount} − remaining {g.Remaining} != {taken} taken by its entries";
            if (credited.Count == 0 && mine.Count > 0) return $"G2 {g.GrantId}: drawn on before it was credited";
            if (credited.Count == 0 && g.Status is not (GrantStatus.Scheduled or GrantStatus.Voided)) return $"G2 {g.GrantId}: {g.Status} but never credited";
            if (g.Status == GrantStatus.Scheduled && g.Remaining != g.Amount) return $"G2 {g.GrantId}: scheduled with {g.Remaining} of {g.Amount}";
            if (g.Status is GrantStatus.Depleted or GrantStatus.Expired or GrantStatus.Voided && g.Remaining != 0) return $"G2 {g.GrantId}: {g.Status} with {g.Remaining} left";
            if (g.Status == GrantStatus.Active && g.Remaining == 0) return $"G2 {g.GrantId}: active with nothing left";
        }

        return null;
    }

    /// <summary>The account against its history: the running sums, a replay of the rows, the grant rows a reload reads, the model.</summary>
    private static string? CheckStored(AccountState state, List<LedgerRow> rows, Dictionary<Guid, CreditGrant> table, List<GrantEntry> entries, List<ModelGrant> model)
    {
        var balance = 0m;
        var entriesBySeq = entries.ToLookup(e => e.Seq);
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            balance += row.Amount;
            if (row.Sequence != i + 1) return $"row {i} has sequence {row.Sequence}";
            if (row.BalanceAfter != balance) return $"row {row.Sequence} ({row.Reason} {row.Amount}): balanceAfter {row.BalanceAfter} != running sum {balance} (I1)";
            var moved = entriesBySeq[row.Sequence].ToList();
            if (row.Amount != 0 && moved.Count == 0) return $"row {row.Sequence} ({row.Reason} {row.Amount}) moves no grant (G1)";
            if (moved.Count > 0 && moved.Sum(e => e.Amount) != row.Amount) return $"row {row.Sequence}: entries add up to {moved.Sum(e => e.Amount)}, the row's amount is {row.Amount} (G1)";
            if (!moved.Select(e => e.Order).SequenceEqual(Enumerable.Range(0, moved.Count))) return $"row {row.Sequence}: entry order [{string.Join(", ", moved.Select(e => e.Order))}]";
        }

        if (state.Balance != balance || state.Version != rows.Count) return $"balance {state.Balance} v{state.Version} != history {balance} v{rows.Count}";

        // A reload reads the open grant rows; the rows alone replay the rest of the account and its active grants.
        var stored = table.Values.Where(g => g.IsOpen).OrderBy(g => g.GrantId).ToList();
        if (!stored.SequenceEqual(state.Grants.OrderBy(g => g.GrantId))) return $"the open grant rows [{string.Join("; ", stored)}] are not the account's {state.Grants}";
        if (table.Count != model.Count || model.Any(m => !table.TryGetValue(m.Id, out var g) || !Same(m, g)))
            return $"the grant rows differ from the model: [{string.Join("; ", table.Values)}] vs [{string.Join("; ", model)}]";
        var opened = state with { Grants = GrantSet.Empty };
        var replayed = AccountLedgerProperties.Replay(opened, rows);
        var fromRows = replayed.Grants.OrderBy(g => g.GrantId).ToList();
        if (!fromRows.SequenceEqual(state.Grants.Where(g => g.Status == GrantStatus.Active).OrderBy(g => g.GrantId)))
            return $"the history's rows replay the active grants [{string.Join("; ", fromRows)}], the account has {state.Grants}";
        if (!Equal(replayed with { Grants = state.Grants }, state)) return $"replay differs:\n  state  {state}\n  replay {replayed}";
        return null;
    }

    private static bool Equal(AccountState a, AccountState b) => a == b && a.Grants.Equals(b.Grants) && a.CycleAnchor == b.CycleAnchor;

    private static T Decided<T>(PendingOperation<T> operation, LedgerBatch batch)
    {
        operation.Decide(batch);
        operation.Complete(batch.State);
        return operation.Task.IsCompletedSuccessfully ? operation.Task.Result : throw new InvalidOperationException($"{operation.Kind} was not answered");
    }

    [Property(MaxTest = 1000)]
    public Property Charges_draw_in_spending_order_and_the_grants_equal_a_replay_with_G1_G2_after_every_step() =>
        Prop.ForAll(Scenario.ToArbitrary(), s =>
        {
            var failure = Check(s);
            return (failure is null).Label(failure ?? "");
        });

    /// <summary>The README's example of grants, order and expiry, decided by the same rules.</summary>
    [Fact]
    public void The_readme_example_spends_and_expires_as_its_table_says()
    {
        // Signup expires after 90 days (2160 h); a 3.00 promotional grant with priority 10 expiring after 14 days; 5.00 paid from 1 April.
        var s = new GrantScenario(0m, 90 * 24,
        [
            new GrantBatch(TimeSpan.Zero, [new GrantOp.Give(3m, GrantCategory.Promotional, 10, null, 14 * 24), new GrantOp.Give(5m, GrantCategory.Paid, 50, 31 * 24, null)]),
            new GrantBatch(TimeSpan.FromDays(9), [new GrantOp.Charge(4m)]),
            new GrantBatch(TimeSpan.FromDays(23), [new GrantOp.Charge(2m)]),
            new GrantBatch(TimeSpan.FromDays(60), []),
        ]);
        Assert.Null(Check(s));
    }
}
