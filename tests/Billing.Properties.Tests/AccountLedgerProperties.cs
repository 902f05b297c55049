using System.Text.Json;
using Billing.Accounts;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Billing.Properties.Tests;

/// <summary>One operation on an account, as the grain receives it.</summary>
public abstract record LedgerOp
{
    public sealed record Usage(decimal Cost, bool Personal) : LedgerOp;

    public sealed record TopUp(decimal Amount) : LedgerOp;

    public sealed record Plan(bool IsPro, decimal MonthlyQuota) : LedgerOp;
}

/// <summary>Operations the grain decides in one group-commit batch, after time moved on by <see cref="Advance"/>.</summary>
public sealed record LedgerBatchInput(TimeSpan Advance, LedgerOp[] Ops)
{
    public override string ToString() => $"+{Advance} [{string.Join(", ", Ops.Select(o => o.ToString()))}]";
}

public sealed record LedgerScenario(AccountKind Kind, bool FirstProject, DateTimeOffset Start, LedgerBatchInput[] Batches)
{
    public override string ToString() => $"{Kind} first={FirstProject} start={Start:O}\n  " + string.Join("\n  ", Batches.Select(b => b.ToString()));
}

/// <summary>
/// The account's real batch decisions — the grain's <c>LedgerBatch</c> and its operations' own <c>Decide</c>, per
/// batch the cycle reset first, then every operation in order against the state the earlier ones leave — for random
/// sequences of usage, top-ups, plan changes and time moving on (cycle rollovers). The state must always equal a
/// replay of its history.
/// </summary>
public class AccountLedgerProperties
{
    private static readonly Gen<decimal> Cost = Gen.Frequency(
        (4, from cents in Gen.Choose(0, 300_000) select cents / 10_000m),            // 0 … 30.0000
        (3, from m in Gen.Choose(0, 999_999_999) from s in Gen.Choose(0, 18) select m / Pow10(s)), // up to scale 18
        (1, Gen.Elements(0m, 0.000000000000000001m, 10m, 20m, 30m)));

    private static readonly Gen<decimal> Amount = Gen.Frequency(
        (4, from cents in Gen.Choose(1, 500_000) select cents / 10_000m),
        (1, from m in Gen.Choose(1, 999_999_999) from s in Gen.Choose(0, 12) select m / Pow10(s)));

    private static readonly Gen<decimal> Quota = Gen.Frequency(
        (1, Gen.Constant(0m)),
        (3, from c in Gen.Choose(1, 500_000) select c / 10_000m));

    private static readonly Gen<LedgerOp> Op = Gen.Frequency(
        (8, from c in Cost from p in Gen.Elements(true, false) select (LedgerOp)new LedgerOp.Usage(c, p)),
        (2, from a in Amount select (LedgerOp)new LedgerOp.TopUp(a)),
        (1, from pro in Gen.Elements(true, true, false) from q in Quota select (LedgerOp)new LedgerOp.Plan(pro, pro ? q : 0m)));

    private static readonly Gen<TimeSpan> Advance = Gen.Frequency(
        (5, Gen.Constant(TimeSpan.Zero)),
        (3, from m in Gen.Choose(1, 60 * 24) select TimeSpan.FromMinutes(m)),
        (2, from d in Gen.Choose(1, 40) select TimeSpan.FromDays(d)),
        (1, from d in Gen.Choose(28, 200) select TimeSpan.FromDays(d)));

    public static readonly Gen<LedgerScenario> Scenario =
        from kind in Gen.Elements(AccountKind.User, AccountKind.Project)
        from first in Gen.Elements(true, false)
        from start in Gen.Elements(
            new DateTimeOffset(2026, 1, 31, 23, 59, 59, TimeSpan.Zero),
            new DateTimeOffset(2026, 2, 28, 12, 0, 0, TimeSpan.Zero),
            new DateTimeOffset(2024, 2, 29, 0, 0, 0, TimeSpan.Zero),
            new DateTimeOffset(2026, 7, 15, 8, 30, 0, TimeSpan.Zero).AddTicks(1234567))
        from batches in (from adv in Advance from ops in Gen.ListOf(Op).Select(l => l.Take(6).ToArray()) select new LedgerBatchInput(adv, ops))
            .ListOf().Select(l => l.ToArray())
        select new LedgerScenario(kind, first, start, batches);

    private static decimal Pow10(int n)
    {
        var r = 1m;
        for (var i = 0; i < n; i++) r *= 10m;
        return r;
    }

    /// <summary>Opens the account as UserGrain / ProjectGrain do: the opening credit row applied to an empty state.</summary>
    public static (AccountState State, List<LedgerRow> Rows) Open(LedgerScenario s)
    {
        var id = Guid.NewGuid();
        var empty = new AccountState(id, s.Kind, s.Kind == AccountKind.Project ? Guid.NewGuid() : null, 0m, AccountLedger.DefaultCurrency,
            s.Kind == AccountKind.User || s.FirstProject, false, 0m, 0m, null, null, 0, s.Start, s.Start);
        var rows = new List<LedgerRow>();
        if (s.Kind == AccountKind.User)
        {
            var signup = AccountLedger.Credit(empty, new AccountCredit(AccountLedger.SignupCredit, HistoryReasons.SignupCredit, null), s.Start).Row!;
            rows.Add(signup);
            return (AccountLedger.Apply(empty, signup), rows);
        }

        if (!s.FirstProject) return (empty, rows);
        var credit = AccountLedger.Credit(empty, new AccountCredit(AccountLedger.FirstProjectCredit, HistoryReasons.FirstProjectCredit, null), s.Start).Row!;
        rows.Add(credit);
        return (AccountLedger.Apply(empty, credit), rows);
    }

    /// <summary>Rebuilds an account from its opening state (no rows) and its history rows alone.</summary>
    public static AccountState Replay(AccountState opened, IEnumerable<LedgerRow> rows)
    {
        var state = opened with { Balance = 0m, MonthUsed = 0m, Version = 0, IsPro = false, MonthlyQuota = 0m, CycleStart = null, CycleEnd = null, UpdatedAt = opened.CreatedAt, UsageHour = null };
        var closedUsageHours = new List<UsageHourTotal>();
        foreach (var row in rows)
        {
            switch (row.Reason)
            {
                case HistoryReasons.PlanChange:
                    using (var doc = JsonDocument.Parse(row.Extra!))
                    {
                        var plan = new PlanChange(doc.RootElement.GetProperty("isPro").GetBoolean(), doc.RootElement.GetProperty("monthlyQuota").GetDecimal());
                        state = AccountLedger.ApplyPlanChange(state, plan, row);
                    }

                    break;
                case HistoryReasons.QuotaCycleReset:
                    state = AccountLedger.ApplyCycleReset(state, row);
                    break;
                default:
                    state = AccountLedger.Apply(state, row);
                    break;
            }

            state = UsageRollup.Add(state, row, closedUsageHours);
        }

        return state;
    }

    /// <summary>Runs a scenario; returns a failure description or null.</summary>
    public static string? Check(LedgerScenario s)
    {
        var (state, rows) = Open(s);
        var opened = state;
        var closedUsageHours = new List<UsageHourTotal>();
        var now = s.Start;
        foreach (var batch in s.Batches)
        {
            now += batch.Advance;
            // The grain's batch, opened as the grain opens it (StoredAccountLedger.Open after GroupCommit,
            // AccountGrain.Decide before): the cycle reset first; then each operation decides itself, in arrival order.
            var decided = new LedgerBatch(state, now);
            if (AccountLedger.CycleReset(decided.State, now) is { } reset)
            {
                decided.Append(reset, AccountLedger.ApplyCycleReset);
                if (decided.State.CycleEnd <= now || decided.State.CycleStart > now) return $"cycle after reset [{decided.State.CycleStart:O}, {decided.State.CycleEnd:O}) does not contain now {now:O}";
            }

            foreach (var op in batch.Ops)
            {
                var before = decided.State;
                var rowsBefore = decided.Rows.Count;
                var failure = op switch
                {
                    LedgerOp.Usage u => CheckCharge(u, before, decided),
                    LedgerOp.TopUp t => CheckCredit(t, decided),
                    LedgerOp.Plan p => Decided(new PlanChangeOperation(new PlanChange(p.IsPro, p.MonthlyQuota)), decided).IsOk ? null : "plan change refused",
                    _ => null,
                };
                if (failure is not null) return failure;
                if (decided.Rows.Count > rowsBefore + 1) return $"{op} wrote {decided.Rows.Count - rowsBefore} rows";
                if (decided.State.Balance < 0) return $"negative balance {decided.State.Balance}";
                if (decided.State.MonthUsed < 0 || decided.State.MonthUsed > decided.State.MonthlyQuota) return $"monthUsed {decided.State.MonthUsed} outside [0, {decided.State.MonthlyQuota}]";
            }

            // The batch commits: the account is the state its rows leave.
            rows.AddRange(decided.Rows);
            closedUsageHours.AddRange(decided.ClosedUsageHours);
            state = decided.State;
        }

        // Each row's BalanceAfter is the exact running sum of amounts; MonthUsedAfter that of quotaUsed; sequences 1, 2, 3…
        var balance = new Exact(0, 0);
        var monthUsed = new Exact(0, 0);
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            balance += Exact.Of(row.Amount);
            monthUsed += Exact.Of(row.QuotaUsed);
            if (row.Sequence != i + 1) return $"row {i} has sequence {row.Sequence}";
            if (Exact.Of(row.BalanceAfter).CompareTo(balance) != 0) return $"row {row.Sequence} ({row.Reason} {row.Amount}): balanceAfter {row.BalanceAfter} != running sum {balance}";
            if (Exact.Of(row.MonthUsedAfter).CompareTo(monthUsed) != 0) return $"row {row.Sequence}: monthUsedAfter {row.MonthUsedAfter} != running sum {monthUsed}";
            if (row.BalanceAfter < 0) return $"row {row.Sequence}: negative balanceAfter {row.BalanceAfter}";
        }

        if (Exact.Of(state.Balance).CompareTo(balance) != 0) return $"balance {state.Balance} != sum of amounts {balance}";
        if (Exact.Of(state.MonthUsed).CompareTo(monthUsed) != 0) return $"monthUsed {state.MonthUsed} != sum of quotaUsed {monthUsed}";
        if (state.Version != rows.Count) return $"version {state.Version} != {rows.Count} rows";

        var replayed = Replay(opened, rows);
        if (replayed != state) return $"replay differs:\n  state  {state}\n  replay {replayed}";

        // The usage summary's rollup: the hours the batches closed plus the open one are the usage rows' sums, per key.
        var rolledUp = closedUsageHours.Concat(state.UsageHour is { } open ? [open] : [])
            .GroupBy(h => (h.Hour, h.ModelId, h.Currency))
            .ToDictionary(g => g.Key, g => (g.Sum(h => h.Requests), g.Sum(h => h.InputTokens), g.Sum(h => h.OutputTokens), g.Sum(h => h.Cost)));
        var usageRows = rows.Where(r => UsageRollup.Counts(opened.Kind, r.Reason))
            .GroupBy(r => (UsageRollup.HourOf(r.CreatedAt), r.ModelId ?? Guid.Empty, r.Currency))
            .ToDictionary(g => g.Key, g => ((long)g.Count(), (decimal)g.Sum(r => r.InputTokens ?? 0), (decimal)g.Sum(r => r.OutputTokens ?? 0), g.Sum(r => r.QuotaUsed - r.Amount)));
        if (rolledUp.Count != usageRows.Count || rolledUp.Any(h => !usageRows.TryGetValue(h.Key, out var sums) || sums != h.Value))
            return $"usage rollup {string.Join(", ", rolledUp)} != the usage rows' sums {string.Join(", ", usageRows)}";
        return null;
    }

    /// <summary>A charge decided by the grain's ChargeOperation: refused only when balance and quota cannot cover it, quota drawn first.</summary>
    private static string? CheckCharge(LedgerOp.Usage u, AccountState before, LedgerBatch batch)
    {
        var charge = new AccountCharge(Guid.NewGuid(), u.Personal ? HistoryReasons.AiUsagePersonal : HistoryReasons.AiUsage, u.Cost,
            AccountLedger.DefaultCurrency, Guid.NewGuid(), 1, 1, null);
        var quotaLeft = AccountLedger.QuotaLeft(before.IsPro, before.MonthlyQuota, before.MonthUsed, before.CycleEnd, batch.Now);
        var rowsBefore = batch.Rows.Count;
        var operation = new ChargeOperation(charge);
        var answer = Decided(operation, batch);
        if (!answer.IsOk)
        {
            if (answer.Problem!.Status != BillingStatus.InsufficientBalance) return $"unexpected refusal {answer.Problem}";
            if (batch.Rows.Count != rowsBefore || batch.Charges.Any(c => c.UsageId == charge.UsageId)) return "a refused charge wrote a row";
            if (u.Cost <= before.Balance + quotaLeft) return $"refused {u.Cost} although available {before.Balance} + quota {quotaLeft}";
            return null;
        }

        var row = batch.Rows[^1];
        if (row.QuotaUsed < 0 || row.Amount > 0) return $"charge row with quotaUsed {row.QuotaUsed}, amount {row.Amount}";
        if (row.QuotaUsed - row.Amount != u.Cost) return $"charge row quota {row.QuotaUsed} + balance {-row.Amount} != cost {u.Cost}";
        if (row.QuotaUsed > quotaLeft) return $"quota drawn {row.QuotaUsed} > left {quotaLeft}";
        if (row.QuotaUsed < Math.Min(u.Cost, quotaLeft)) return $"quota not drawn first: {row.QuotaUsed} of {quotaLeft}";
        if (row.UsageId != charge.UsageId) return "row lost its usage id";
        var receipt = answer.Value!;
        if (receipt.BalanceAfter != row.BalanceAfter || receipt.QuotaUsed != row.QuotaUsed || receipt.Cost != u.Cost) return $"receipt {receipt} does not match row {row}";
        if (batch.Charges[^1] != receipt) return "the receipt is not the batch's usage record";
        return null;
    }

    /// <summary>A top-up decided by the grain's CreditOperation: refused rather than rounded (nothing written), else one row.</summary>
    private static string? CheckCredit(LedgerOp.TopUp t, LedgerBatch batch)
    {
        var rowsBefore = batch.Rows.Count;
        var answer = Decided(new CreditOperation(new AccountCredit(t.Amount, HistoryReasons.TopUp, Guid.NewGuid())), batch);
        if (answer.IsOk) return batch.Rows.Count == rowsBefore + 1 && batch.ResolveInsufficientBalanceErrors ? null : "an accepted credit wrote no row, or left the balance errors open";
        if (answer.Problem!.Status != BillingStatus.InvalidInput) return $"credit refused with {answer.Problem.Status}";
        return batch.Rows.Count == rowsBefore ? null : "a refused credit wrote a row";
    }

    /// <summary>Decides one operation in the batch and answers it at once (this property checks decisions; answering after commit is GroupCommit's).</summary>
    private static T Decided<T>(PendingOperation<T> operation, LedgerBatch batch)
    {
        operation.Decide(batch);
        operation.Complete(batch.State);
        return operation.Task.IsCompletedSuccessfully ? operation.Task.Result : throw new InvalidOperationException($"{operation.Kind} was not answered");
    }

    [Property(MaxTest = 1000)]
    public Property State_equals_a_replay_of_its_history_and_every_invariant_holds() =>
        Prop.ForAll(Scenario.ToArbitrary(), s =>
        {
            var failure = Check(s);
            return (failure is null).Label(failure ?? "");
        });

    /// <summary>
    /// A top-up whose amount has many decimals would make decimal addition round, so balance_after would no longer
    /// be the exact sum of the history (I1, I6): the ledger refuses it instead.
    /// </summary>
    [Fact]
    public void A_top_up_with_28_decimals_keeps_the_balance_the_exact_sum_of_the_history()
    {
        var s = new LedgerScenario(AccountKind.User, false, new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero),
            [new LedgerBatchInput(TimeSpan.Zero, [new LedgerOp.TopUp(0.1234567890123456789012345678m)])]);
        Assert.Null(Check(s));
    }
}
