using System.Text.Json;
using Billing.Pricing;
using Billing.Storage;

namespace Billing.Accounts;

/// <summary>
/// The money rules of holds, as pure functions of an account (like <see cref="AccountLedger"/>). A hold reserves part
/// of what the account can spend: <c>available</c> = balance + quota left − active holds, never below 0 (H1). A hold
/// past its expiry no longer counts, whether or not its expiry has been recorded yet (H2).
/// </summary>
public static class HoldLedger
{
    /// <summary>The sum of the account's holds that still reserve money at <paramref name="now"/>.</summary>
    public static decimal Held(AccountState state, DateTimeOffset now) => state.Holds.HeldAt(now);

    /// <summary>Balance and quota left, before holds.</summary>
    public static decimal Spendable(AccountState state, DateTimeOffset now) =>
        state.Balance + AccountLedger.QuotaLeft(state.IsPro, state.MonthlyQuota, state.MonthUsed, state.CycleEnd, now);

    /// <summary>What a usage, a capture beyond its hold or a new hold may spend: never below 0.</summary>
    public static decimal Available(AccountState state, DateTimeOffset now) => Math.Max(0m, Spendable(state, now) - Held(state, now));

    /// <summary>
    /// The hook of a usage charge: refused when active holds leave less than its cost available. Null when the holds
    /// change nothing (no hold, or another currency, which the charge itself refuses).
    /// </summary>
    public static BillingProblem? RefuseSpend(AccountState state, string currency, decimal cost, DateTimeOffset now)
    {
        if (state.Holds.IsEmpty || !string.Equals(currency, state.Currency, StringComparison.Ordinal)) return null;
        var held = Held(state, now);
        if (held == 0m) return null;
        var available = Math.Max(0m, Spendable(state, now) - held);
        return cost <= available ? null : Insufficient(state, cost, available, held);
    }

    /// <summary>The account with <paramref name="hold"/> in its new state: active holds are kept, ended ones dropped.</summary>
    public static AccountState WithHold(AccountState state, HoldView hold) => state with
    {
        Holds = hold.Status == HoldStatus.Active ? state.Holds.With(hold) : state.Holds.Without(hold.HoldId),
        HoldsVersion = state.HoldsVersion + 1,
    };

    /// <summary>Decides a new hold on this account: the whole amount from available, or refused.</summary>
    public static (HoldView? Hold, BillingProblem? Problem) Place(AccountState state, HoldPlacement placement, DateTimeOffset now)
    {
        if (!string.Equals(placement.Currency, state.Currency, StringComparison.Ordinal))
        {
            return (null, new BillingProblem(BillingStatus.CurrencyMismatch,
                $"The price is in {placement.Currency} but the {Describe(state)} is in {state.Currency}."));
        }

        var held = Held(state, now);
        var available = Math.Max(0m, Spendable(state, now) - held);
        if (placement.Amount > available) return (null, Insufficient(state, placement.Amount, available, held));

        var request = placement.Request;
        var ttl = request.TtlSeconds ?? HoldRequest.DefaultTtlSeconds;
        return (new HoldView(
            request.HoldId, HoldStatus.Active, Payer(state), state.Id, request.ProjectId, request.UserId, request.ModelId,
            request.InputTokens, request.MaxOutputTokens, placement.Amount, placement.Currency,
            placement.InputPricePerMillion, placement.OutputPricePerMillion, ttl, now.AddSeconds(ttl), now, null, null), null);
    }

    /// <summary>
    /// Decides the capture of <paramref name="hold"/> (active or expired, not yet captured): its charge row and receipt,
    /// and the hold as it ends. In time: the payer is charged the cost up to the hold (as far as balance and quota left
    /// cover it) plus what its available covers beyond it; the rest is shortfall. Late (the hold expired): the whole cost
    /// from available, or refused.
    /// </summary>
    public static (LedgerRow? Row, HoldCaptureReceipt? Receipt, HoldView? Ended, BillingProblem? Problem) Capture(
        AccountState state, HoldView hold, HoldCapture capture, DateTimeOffset now)
    {
        if (UsageCost.TryCompute(capture.InputTokens, capture.OutputTokens, hold.InputPricePerMillion, hold.OutputPricePerMillion) is not { } cost)
            return (null, null, null, new BillingProblem(BillingStatus.InvalidInput, "Token counts are too large: their cost cannot be represented exactly."));

        var late = !hold.IsHeldAt(now);
        var spendable = Spendable(state, now);
        var available = Math.Max(0m, spendable - Held(state, now));
        decimal charged;
        if (late)
        {
            // An expired hold reserves nothing: the slow caller's usage is charged like a new one, whole or not at all.
            if (cost > available)
            {
                return (null, null, null, new BillingProblem(BillingStatus.InsufficientBalance,
                    $"Hold {hold.HoldId} expired at {hold.ExpiresAt:O} and the {Describe(state)} cannot cover its late capture. Required: {cost} {hold.Currency}, available: {available} {state.Currency}."));
            }

            charged = cost;
        }
        else
        {
            // The hold's own money first, as far as the balance still has it (an expired grant can leave the holds above
            // it: API.md), then what is available beyond all holds. Not "spendable − the other holds": that let the
            // other holds' reservations, no longer backed, take this hold's money. Never more than spendable.
            charged = Math.Min(cost, Math.Min(hold.Amount, spendable) + available);
        }

        var shortfall = cost - charged;
        var released = late ? 0m : Math.Max(0m, hold.Amount - charged);
        var quotaLeft = AccountLedger.QuotaLeft(state.IsPro, state.MonthlyQuota, state.MonthUsed, state.CycleEnd, now);
        var fromQuota = Math.Min(charged, quotaLeft);
        var fromBalance = charged - fromQuota;
        if (ExactDecimal.TryAdd(state.Balance, -fromBalance) is not { } balanceAfter || ExactDecimal.TryAdd(state.MonthUsed, fromQuota) is not { } monthUsedAfter)
            return (null, null, null, new BillingProblem(BillingStatus.InvalidInput, "The amount has more significant digits than the account can hold exactly; use fewer decimals."));

        // Grants: a capture draws on the payer's grants at capture time, in spending order, like a usage charge (G1, G2);
        // the hold reserved against the balance, not against any one grant.
        if (CreditGrants.Draw(state.Grants, fromBalance) is not { } draws)
            return (null, null, null, new BillingProblem(BillingStatus.InvalidInput, "The amount has more significant digits than the account can hold exactly; use fewer decimals."));

        var usageId = capture.UsageId ?? hold.HoldId;
        var (reason, counterparty) = ChargeReason(hold);
        var row = new LedgerRow(RowIds.New(), state.Version + 1, -fromBalance, fromQuota, state.Currency, reason, balanceAfter, monthUsedAfter,
            usageId, counterparty, hold.ModelId, capture.InputTokens, capture.OutputTokens, null,
            JsonSerializer.Serialize(new { holdId = hold.HoldId, held = hold.Amount, cost, charged, shortfall, late }), now)
        {
            HoldId = hold.HoldId,
            GrantChanges = draws,
        };
        var receipt = new HoldCaptureReceipt(usageId, cost, hold.Currency, capture.InputTokens, capture.OutputTokens, hold.Payer, state.Id,
            balanceAfter, fromQuota, hold.HoldId, hold.Amount, charged, released, shortfall, late, shortfall > 0 ? RowIds.New() : null);
        var ended = hold with
        {
            Status = late ? HoldStatus.Expired : HoldStatus.Captured,
            EndedAt = late ? hold.EndedAt ?? hold.ExpiresAt : now,
            Capture = receipt,
        };
        return (row, receipt, ended, null);
    }

    /// <summary>The hold as it ends by itself: released at its expiry.</summary>
    public static HoldView Expired(HoldView hold) => hold with { Status = HoldStatus.Expired, EndedAt = hold.ExpiresAt };

    /// <summary>The message of a shortfall's billing error.</summary>
    public static string ShortfallMessage(HoldCaptureReceipt receipt) =>
        $"The capture of hold {receipt.HoldId} cost {receipt.Cost} {receipt.Currency}, more than the hold ({receipt.Held}, as far as the balance still covered it) and what the account had available beyond it: {receipt.Shortfall} {receipt.Currency} was not charged.";

    /// <summary>The history reason of a capture, as for usage: the project, the user paying for a project, or personal.</summary>
    private static (string Reason, Guid? Counterparty) ChargeReason(HoldView hold) => hold.Payer switch
    {
        PayingAccount.Project => (HistoryReasons.AiUsage, hold.UserId),
        _ when hold.ProjectId is { } project => (HistoryReasons.AiUsageUserFallback, project),
        _ => (HistoryReasons.AiUsagePersonal, null),
    };

    private static PayingAccount Payer(AccountState state) => state.Kind == AccountKind.Project ? PayingAccount.Project : PayingAccount.User;

    private static BillingProblem Insufficient(AccountState state, decimal cost, decimal available, decimal held) =>
        new(BillingStatus.InsufficientBalance,
            $"Insufficient balance in the {Describe(state)}. Required: {cost} {state.Currency}, available: {available} {state.Currency} ({held} held by active holds).");

    private static string Describe(AccountState state) =>
        state.Kind == AccountKind.Project ? $"project account {state.Id}" : $"user account {state.Id}";
}
