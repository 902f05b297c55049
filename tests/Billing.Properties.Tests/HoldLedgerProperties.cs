using Billing.Accounts;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Billing.Properties.Tests;

/// <summary>One hold operation, or a usage or top-up beside them, as the account grain receives it.</summary>
public abstract record HoldOp
{
    public sealed record Place(long Tokens, int TtlSeconds) : HoldOp;

    /// <summary>Captures the <see cref="Index"/>-th hold placed so far (modulo), for <see cref="Tokens"/> at its pinned price.</summary>
    public sealed record Capture(int Index, long Tokens) : HoldOp;

    /// <summary>An ended hold is no longer in memory: the grain reads it from the database (not modelled here: not found).</summary>
    public sealed record Void(int Index) : HoldOp;

    public sealed record Usage(decimal Cost) : HoldOp;

    public sealed record TopUp(decimal Amount) : HoldOp;

    public sealed record Expire : HoldOp;
}

public sealed record HoldBatch(TimeSpan Advance, HoldOp[] Ops)
{
    public override string ToString() => $"+{Advance} [{string.Join(", ", Ops.Select(o => o.ToString()))}]";
}

public sealed record HoldScenario(decimal Quota, HoldBatch[] Batches)
{
    public override string ToString() => $"quota {Quota}\n  " + string.Join("\n  ", Batches.Select(b => b.ToString()));
}

/// <summary>
/// The hold operations' real decisions (the grain's <c>LedgerBatch</c> and each operation's <c>Decide</c>) for random
/// sequences of holds, captures (below, at and above the hold, on time and late), voids, usage, top-ups, expiries and
/// time moving on. After every operation: available = balance + quota left − held is never negative (H1), a hold is
/// placed exactly when a model of available says it fits, and a hold ends once (H2); at the end every hold has ended
/// exactly once and the balance is the sum of the rows.
/// </summary>
public class HoldLedgerProperties
{
    /// <summary>Pinned price: 0.01 per token, input and output alike.</summary>
    private const decimal PricePerMillion = 10_000m;

    private static readonly Gen<HoldOp> Op = Gen.Frequency(
        (5, from t in Gen.Choose(0, 1_500) from ttl in Gen.Elements(1, 30, 60, 900, 86_400) select (HoldOp)new HoldOp.Place(t, ttl)),
        (4, from i in Gen.Choose(0, 50) from t in Gen.Choose(0, 2_000) select (HoldOp)new HoldOp.Capture(i, t)),
        (2, from i in Gen.Choose(0, 50) select (HoldOp)new HoldOp.Void(i)),
        (3, from c in Gen.Choose(0, 800) select (HoldOp)new HoldOp.Usage(c / 100m)),
        (1, from a in Gen.Choose(1, 1_000) select (HoldOp)new HoldOp.TopUp(a / 100m)),
        (1, Gen.Constant((HoldOp)new HoldOp.Expire())));

    private static readonly Gen<TimeSpan> Advance = Gen.Frequency(
        (5, Gen.Constant(TimeSpan.Zero)),
        (3, from s in Gen.Choose(1, 120) select TimeSpan.FromSeconds(s)),
        (1, from h in Gen.Choose(1, 30) select TimeSpan.FromHours(h)));

    public static readonly Gen<HoldScenario> Scenario =
        from quota in Gen.Elements(0m, 0m, 5m)
        from batches in (from adv in Advance from ops in Gen.ListOf(Op).Select(l => l.Take(8).ToArray()) select new HoldBatch(adv, ops))
            .ListOf().Select(l => l.Take(12).ToArray())
        select new HoldScenario(quota, batches);

    public static string? Check(HoldScenario s)
    {
        var start = new DateTimeOffset(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);
        var user = Guid.NewGuid();
        var empty = new AccountState(user, AccountKind.User, null, 0m, "USD", true, false, 0m, 0m, null, null, 0, start, start);
        var signup = AccountLedger.Credit(empty, new AccountCredit(10m, HistoryReasons.SignupCredit, null), start).Row!;
        var state = AccountLedger.Apply(empty, signup);
        var rows = new List<LedgerRow> { signup };
        var now = start;
        if (s.Quota > 0)
        {
            var plan = new LedgerBatch(state, now);
            if (Decided(new PlanChangeOperation(new PlanChange(true, s.Quota)), plan) is not { IsOk: true }) return "plan change refused";
            rows.AddRange(plan.Rows);
            state = plan.State;
        }

        var placed = new List<Guid>();
        var ends = new Dictionary<Guid, int>();
        var batches = s.Batches.Append(new HoldBatch(TimeSpan.FromDays(2), [new HoldOp.Expire()])); // at the end every hold has ended
        foreach (var input in batches)
        {
            now += input.Advance;
            var batch = new LedgerBatch(state, now);
            if (AccountLedger.CycleReset(batch.State, now) is { } reset) batch.Append(reset, AccountLedger.ApplyCycleReset);
            foreach (var op in input.Ops)
            {
                var before = batch.State;
                var available = HoldLedger.Spendable(before, now) - HoldLedger.Held(before, now);
                var failure = op switch
                {
                    HoldOp.Place p => CheckPlace(p, batch, available, placed),
                    HoldOp.Capture c when placed.Count > 0 => CheckCapture(placed[c.Index % placed.Count], c.Tokens, batch, available),
                    HoldOp.Void v when placed.Count > 0 => Decided(new VoidHoldOperation(placed[v.Index % placed.Count], null, 0), batch) is { } voided
                        && (voided.IsOk || voided.Problem!.Status is BillingStatus.HoldConflict or BillingStatus.HoldNotFound) ? null : "void answered neither the hold nor a conflict",
                    HoldOp.Usage u => CheckUsage(u, batch, available),
                    HoldOp.TopUp t => Decided(new CreditOperation(new AccountCredit(t.Amount, HistoryReasons.TopUp, Guid.NewGuid())), batch)!.IsOk ? null : "top-up refused",
                    HoldOp.Expire => Decided(new ExpireHoldsOperation(), batch) >= 0 ? null : "expiry failed",
                    _ => null,
                };
                if (failure is not null) return $"{op} at {now:O}: {failure}";
                if (batch.State.Balance < 0) return $"{op}: negative balance {batch.State.Balance}";
                var after = HoldLedger.Spendable(batch.State, now) - HoldLedger.Held(batch.State, now);
                if (after < 0) return $"{op}: available {after} < 0 (H1)";
            }

            // The batch commits; a hold ends once: from active to captured, voided or expired, never again.
            foreach (var hold in batch.Holds.ToWrites(state.HoldsVersion).Inserted.Concat(batch.Holds.ToWrites(state.HoldsVersion).Ended))
            {
                var wasActive = state.Holds.Contains(hold.HoldId) || !ends.ContainsKey(hold.HoldId);
                if (hold.Status != HoldStatus.Active && wasActive) ends[hold.HoldId] = ends.GetValueOrDefault(hold.HoldId) + 1;
                else ends.TryAdd(hold.HoldId, 0);
            }

            rows.AddRange(batch.Rows);
            state = batch.State;
        }

        if (!state.Holds.IsEmpty) return $"{state.Holds.Count} holds still active two days after the last ttl";
        foreach (var id in placed)
        {
            if (ends.GetValueOrDefault(id) != 1) return $"hold {id} ended {ends.GetValueOrDefault(id)} times (H2)";
        }

        if (rows.Sum(r => r.Amount) != state.Balance) return $"balance {state.Balance} != sum of rows {rows.Sum(r => r.Amount)} (I1)";
        if (rows.Where(r => r.HoldId is not null).GroupBy(r => r.HoldId).Any(g => g.Count() > 1)) return "a hold was charged twice (H3)";
        return null;
    }

    private static string? CheckPlace(HoldOp.Place p, LedgerBatch batch, decimal available, List<Guid> placed)
    {
        var amount = p.Tokens * PricePerMillion / 1_000_000m;
        var request = new HoldRequest(Guid.NewGuid(), null, batch.State.Id, Guid.NewGuid(), p.Tokens, 0, p.TtlSeconds);
        var answer = Decided(new PlaceHoldOperation(new HoldPlacement(request, amount, "USD", PricePerMillion, PricePerMillion)), batch)!;
        if (answer.IsOk != (amount <= available)) return $"placed {answer.IsOk} with amount {amount}, available {available}";
        if (answer.IsOk) placed.Add(request.HoldId);
        return null;
    }

    private static string? CheckCapture(Guid holdId, long tokens, LedgerBatch batch, decimal available)
    {
        var hold = batch.FindHold(holdId);
        var rowsBefore = batch.Rows.Count;
        var spendable = HoldLedger.Spendable(batch.State, batch.Now);
        var answer = Decided(new CaptureHoldOperation(new HoldCapture(holdId, 0, tokens), null, 0), batch)!;
        if (hold is null) return answer.IsOk || answer.Problem!.Status is BillingStatus.HoldNotFound or BillingStatus.HoldConflict ? null : $"capture of an ended hold: {answer.Problem}";
        if (hold.Capture is not null) return answer.Value == hold.Capture && batch.Rows.Count == rowsBefore ? null : "a second capture charged again";
        if (hold.Status == HoldStatus.Voided) return answer.Problem?.Status == BillingStatus.HoldConflict ? null : "capture after void not refused";
        var cost = tokens * PricePerMillion / 1_000_000m;
        var late = !hold.IsHeldAt(batch.Now);
        if (!answer.IsOk) return late && answer.Problem!.Status == BillingStatus.InsufficientBalance && cost > available ? null : $"capture refused: {answer.Problem}";
        var r = answer.Value!;
        // On time: the hold's own amount as far as balance and quota left cover it, plus what is available beyond all holds
        // (API.md Holds), not "available + the hold", which let other holds that expired credit no longer backs take it.
        var charged = late ? cost : Math.Min(cost, Math.Min(hold.Amount, spendable) + Math.Max(0m, available));
        if (r.Cost != cost || r.Charged != charged || r.Shortfall != cost - charged || r.Late != late) return $"receipt {r}, expected charged {charged} of {cost}";
        if (r.Released != (late ? 0m : Math.Max(0m, hold.Amount - charged))) return $"released {r.Released}";
        if (batch.Rows.Count != rowsBefore + 1 || batch.Rows[^1].QuotaUsed - batch.Rows[^1].Amount != charged) return "the capture's row does not charge what it says";
        return null;
    }

    private static string? CheckUsage(HoldOp.Usage u, LedgerBatch batch, decimal available)
    {
        var charge = new AccountCharge(Guid.NewGuid(), HistoryReasons.AiUsagePersonal, u.Cost, "USD", Guid.NewGuid(), 1, 1, null);
        var answer = Decided(new ChargeOperation(charge), batch)!;
        return answer.IsOk == (u.Cost <= available) ? null : $"usage of {u.Cost} {(answer.IsOk ? "charged" : "refused")} with {available} available";
    }

    private static T Decided<T>(PendingOperation<T> operation, LedgerBatch batch)
    {
        operation.Decide(batch);
        operation.Complete(batch.State);
        return operation.Task.IsCompletedSuccessfully ? operation.Task.Result : throw new InvalidOperationException($"{operation.Kind} was not answered");
    }

    [Property(MaxTest = 500)]
    public Property Available_never_goes_negative_and_every_hold_ends_exactly_once() =>
        Prop.ForAll(Scenario.ToArbitrary(), s =>
        {
            var failure = Check(s);
            return (failure is null).Label(failure ?? "");
        });
}
