using System.Text.Json;
using Billing.Storage;

namespace Billing.Accounts;

/// <summary>
/// The money rules of one account, as pure functions: each decision returns the history row that explains it,
/// and the account after a row is <see cref="Apply"/> of the row — so the balance is always the sum of the rows'
/// amounts and monthUsed the sum of their quotaUsed.
/// </summary>
public static class AccountLedger
{
    public const decimal SignupCredit = 10.0000m;
    public const decimal FirstProjectCredit = 20.0000m;
    public const string DefaultCurrency = "USD";

    /// <summary>What is left of the monthly quota at <paramref name="now"/> (a cycle that has ended counts as reset).</summary>
    public static decimal QuotaLeft(bool isPro, decimal monthlyQuota, decimal monthUsed, DateTimeOffset? cycleEnd, DateTimeOffset now)
    {
        if (!isPro) return 0m;
        if (cycleEnd is { } end && now >= end) return monthlyQuota;
        return Math.Max(0m, monthlyQuota - monthUsed);
    }

    /// <summary>The most one usage could cost and still be paid by this account alone: active holds are not spendable (H1).</summary>
    public static decimal Available(AccountView account, DateTimeOffset now) =>
        Math.Max(0m, account.Balance + QuotaLeft(account.IsPro, account.MonthlyQuota, account.MonthUsed, account.CycleEnd, now) - account.Held);

    public static AccountState Apply(AccountState state, LedgerRow row) => state with
    {
        Balance = row.BalanceAfter,
        MonthUsed = row.MonthUsedAfter,
        Version = row.Sequence,
        UpdatedAt = row.CreatedAt,
        Grants = CreditGrants.Apply(state.Grants, row.GrantChanges),
    };

    /// <summary>
    /// When a pro account's cycle has ended: the reset row (monthUsed back to 0). The new cycle starts where the ended
    /// one ended (or, when whole cycles passed untouched, at the last boundary before now) and ends at the next
    /// boundary of the anchor: the anchor's day of month, clamped to the month's length, at the anchor's time of day.
    /// Boundaries are always counted from the anchor, never from the previous cycle, so a cycle anchored on the 31st
    /// ends on Feb 28 and then on Mar 31 again instead of drifting to the 28th.
    /// </summary>
    public static LedgerRow? CycleReset(AccountState state, DateTimeOffset now)
    {
        if (!state.IsPro || state.CycleEnd is not { } end || now < end) return null;
        // Accounts whose cycle predates anchors were anchored where their cycle started (migration 0005).
        var anchor = state.CycleAnchor ?? state.CycleStart ?? end.AddMonths(-1);
        var (newStart, newEnd) = NextCycle(anchor, end, now);
        return Row(state, now, amount: 0m, quotaUsed: -state.MonthUsed, HistoryReasons.QuotaCycleReset,
            extra: Json(new { cycleStart = newStart, cycleEnd = newEnd }))!;
    }

    /// <summary>The <paramref name="months"/>-th cycle boundary after <paramref name="anchor"/> (UTC; the day clamped to the month).</summary>
    public static DateTimeOffset CycleBoundary(DateTimeOffset anchor, int months) => anchor.ToUniversalTime().AddMonths(months);

    /// <summary>The cycle following one that ended at <paramref name="end"/>, moved on to contain <paramref name="now"/>.</summary>
    private static (DateTimeOffset Start, DateTimeOffset End) NextCycle(DateTimeOffset anchor, DateTimeOffset end, DateTimeOffset now)
    {
        anchor = anchor.ToUniversalTime();
        end = end.ToUniversalTime();
        var k = Math.Max(1, (end.Year - anchor.Year) * 12 + end.Month - anchor.Month);
        while (CycleBoundary(anchor, k) <= end) k++; // the first boundary after the ended cycle
        var start = end;
        while (CycleBoundary(anchor, k) <= now)
        {
            start = CycleBoundary(anchor, k);
            k++;
        }

        return (start, CycleBoundary(anchor, k));
    }

    /// <summary>The cycle that a reset row starts (its extra holds it); the anchor stays.</summary>
    public static AccountState ApplyCycleReset(AccountState state, LedgerRow reset)
    {
        using var doc = JsonDocument.Parse(reset.Extra!);
        return Apply(state, reset) with
        {
            CycleStart = doc.RootElement.GetProperty("cycleStart").GetDateTimeOffset(),
            CycleEnd = doc.RootElement.GetProperty("cycleEnd").GetDateTimeOffset(),
        };
    }

    /// <summary>Decides a charge: quota first, then balance, never below zero. Returns the row or why not.</summary>
    public static (LedgerRow? Row, BillingProblem? Problem) Charge(AccountState state, AccountCharge charge, DateTimeOffset now)
    {
        if (!string.Equals(charge.Currency, state.Currency, StringComparison.Ordinal))
        {
            return (null, new BillingProblem(BillingStatus.CurrencyMismatch,
                $"The price is in {charge.Currency} but the {Describe(state)} is in {state.Currency}."));
        }

        var quotaLeft = QuotaLeft(state.IsPro, state.MonthlyQuota, state.MonthUsed, state.CycleEnd, now);
        var fromQuota = Math.Min(charge.Cost, quotaLeft);
        var fromBalance = ExactDecimal.TrySubtract(charge.Cost, fromQuota);
        if (fromBalance is null) return (null, Inexact);
        if (fromBalance > state.Balance)
        {
            return (null, new BillingProblem(BillingStatus.InsufficientBalance,
                $"Insufficient balance in the {Describe(state)}. Required: {charge.Cost} {charge.Currency}, available: {state.Balance + quotaLeft} {state.Currency}."));
        }

        // Grants: what the balance pays is drawn from the grants in spending order (CreditGrants.Draw).
        if (CreditGrants.Draw(state.Grants, fromBalance.Value) is not { } draws) return (null, Inexact);
        var row = Row(state, now, -fromBalance.Value, fromQuota, charge.Reason,
            extra: null, charge.UsageId, charge.CounterpartyId, charge.ModelId, charge.InputTokens, charge.OutputTokens);
        return row is null ? (null, Inexact) : (row with { GrantChanges = draws }, null);
    }

    /// <summary>
    /// A credit: its row creates the grant that holds it (promotional or paid by reason), expiring at <paramref name="expiresAt"/>.
    /// Refused when the balance could not then give back every grant exactly (<see cref="CreditGrants.CanGiveBack"/>).
    /// </summary>
    public static (LedgerRow? Row, BillingProblem? Problem) Credit(AccountState state, AccountCredit credit, DateTimeOffset now, DateTimeOffset? expiresAt = null) =>
        Row(state, now, credit.Amount, 0m, credit.Reason, extra: null, creditId: credit.CreditId) is { } row
        && row with { GrantChanges = [CreditGrants.FromCredit(state, credit, now, expiresAt)] } is var credited
        && CreditGrants.CanGiveBack(state, credited)
            ? (credited, null)
            : (null, Inexact);

    private static readonly BillingProblem Inexact = new(BillingStatus.InvalidInput,
        "The amount has more significant digits than the account can hold exactly; use fewer decimals.");

    /// <summary>A plan change anchors a new cycle at now (pro) or clears it, and returns the quota drawn so far.</summary>
    public static LedgerRow PlanChange(AccountState state, PlanChange plan, DateTimeOffset now) =>
        Row(state, now, 0m, -state.MonthUsed, HistoryReasons.PlanChange,
            extra: Json(new
            {
                isPro = plan.IsPro,
                monthlyQuota = plan.MonthlyQuota,
                cycleStart = plan.IsPro ? now : (DateTimeOffset?)null,
                cycleEnd = plan.IsPro ? CycleBoundary(now, 1) : (DateTimeOffset?)null,
            }))!;

    public static AccountState ApplyPlanChange(AccountState state, PlanChange plan, LedgerRow row) => Apply(state, row) with
    {
        IsPro = plan.IsPro,
        MonthlyQuota = plan.MonthlyQuota,
        CycleStart = plan.IsPro ? row.CreatedAt : null,
        CycleEnd = plan.IsPro ? CycleBoundary(row.CreatedAt, 1) : null,
        CycleAnchor = plan.IsPro ? row.CreatedAt : null,
    };

    /// <summary>
    /// The project's zero-amount row for a usage its user paid (what was charged to whom is in its extra, with the
    /// seed's keys for this row, so that readers of the seed's schema keep finding them; DESIGN.md, Storage).
    /// </summary>
    public static LedgerRow UserFallbackMarker(AccountState state, UsageReceipt userReceipt, Guid modelId, DateTimeOffset now) =>
        Row(state, now, 0m, 0m, HistoryReasons.AiUsageUserFallback,
            extra: Json(new
            {
                model_id = modelId, input_tokens = userReceipt.InputTokens, output_tokens = userReceipt.OutputTokens, deducted_from = "user",
                user_id = userReceipt.AccountId, cost = userReceipt.Cost, currency = userReceipt.Currency,
            }),
            userReceipt.UsageId, userReceipt.AccountId, modelId, userReceipt.InputTokens, userReceipt.OutputTokens)!;

    /// <summary>The next row, or null when its balance or monthUsed would not be exact.</summary>
    private static LedgerRow? Row(
        AccountState state, DateTimeOffset now, decimal amount, decimal quotaUsed, string reason, string? extra,
        Guid? usageId = null, Guid? counterpartyId = null, Guid? modelId = null, long? inputTokens = null,
        long? outputTokens = null, Guid? creditId = null)
    {
        if (ExactDecimal.TryAdd(state.Balance, amount) is not { } balanceAfter) return null;
        if (ExactDecimal.TryAdd(state.MonthUsed, quotaUsed) is not { } monthUsedAfter) return null;
        return new(RowIds.New(), state.Version + 1, amount, quotaUsed, state.Currency, reason,
            balanceAfter, monthUsedAfter, usageId, counterpartyId, modelId, inputTokens, outputTokens, creditId, extra, now);
    }

    private static string Describe(AccountState state) =>
        state.Kind == AccountKind.Project ? $"project account {state.Id}" : $"user account {state.Id}";

    private static string Json<T>(T value) => JsonSerializer.Serialize(value);
}
