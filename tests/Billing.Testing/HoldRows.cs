using Npgsql;

namespace Billing.Testing;

/// <summary>A hold (a row of <c>billing_hold</c> that is not a refused placement's claim), as the hold invariants (H1–H3) need it.</summary>
public sealed record HoldRow(
    Guid HoldId, AccountKind Kind, Guid AccountId, decimal Amount, string Status, DateTimeOffset ExpiresAt, DateTimeOffset? EndedAt,
    Guid? UsageId, decimal? Cost, decimal? Charged, decimal? Released, decimal? Shortfall, bool? Late, Guid? ShortfallErrorId)
{
    internal static Task<List<HoldRow>> ReadAsync(NpgsqlConnection db, LedgerScope? scope) => LedgerSnapshot.Query(db, """
        SELECT hold_id, scope, account_id, amount, status, expires_at, ended_at, usage_id, cost, charged, released, shortfall, late, shortfall_error_id
        FROM billing_hold WHERE status <> 'refused' AND ($1::uuid[] IS NULL OR account_id = ANY($1))
        """, r => new HoldRow(r.GetGuid(0), r.GetString(1) == "project" ? AccountKind.Project : AccountKind.User, r.GetGuid(2), r.GetDecimal(3), r.GetString(4),
            r.GetFieldValue<DateTimeOffset>(5), r.IsDBNull(6) ? null : r.GetFieldValue<DateTimeOffset>(6), r.IsDBNull(7) ? null : r.GetGuid(7),
            r.IsDBNull(8) ? null : r.GetDecimal(8), r.IsDBNull(9) ? null : r.GetDecimal(9), r.IsDBNull(10) ? null : r.GetDecimal(10),
            r.IsDBNull(11) ? null : r.GetDecimal(11), r.IsDBNull(12) ? null : r.GetBoolean(12), r.IsDBNull(13) ? null : r.GetGuid(13)),
        scope?.Users.Concat(scope.Projects).ToArray());
}

/// <summary>A refused placement's claim of its hold id (a <c>billing_hold</c> row with status <c>refused</c>) and the billing error it names.</summary>
public sealed record RefusedHoldRow(Guid HoldId, Guid AccountId, Guid BillingErrorId)
{
    internal static Task<List<RefusedHoldRow>> ReadAsync(NpgsqlConnection db, LedgerScope? scope) => LedgerSnapshot.Query(db, """
        SELECT hold_id, account_id, billing_error_id FROM billing_hold
        WHERE status = 'refused' AND ($1::uuid[] IS NULL OR account_id = ANY($1))
        """, r => new RefusedHoldRow(r.GetGuid(0), r.GetGuid(1), r.GetGuid(2)), scope?.Users.Concat(scope.Projects).ToArray());
}

/// <summary>A billing error that names a hold.</summary>
public sealed record HoldErrorRow(Guid Id, Guid HoldId, string Type, Guid ScopeId)
{
    internal static Task<List<HoldErrorRow>> ReadAsync(NpgsqlConnection db, LedgerScope? scope) => LedgerSnapshot.Query(db, """
        SELECT id, hold_id, error_type, scope_id FROM billing_error WHERE hold_id IS NOT NULL AND ($1::uuid[] IS NULL OR scope_id = ANY($1))
        """, r => new HoldErrorRow(r.GetGuid(0), r.GetGuid(1), r.GetString(2), r.GetGuid(3)), scope?.Users.Concat(scope.Projects).ToArray());
}

/// <summary>
/// H1–H3 on a snapshot:
/// <list type="bullet">
/// <item>H1: an account's holds still in force at the snapshot's instant are within its balance + quota left (so
/// available = balance + quota left − held is never below 0).</item>
/// <item>H2: a hold ended once: an active hold has no end; a captured one (or an expired one captured late) has exactly
/// one charge row naming it, under its usage id, whose amount is what the capture charged; a voided or expired hold
/// has none; released and shortfall add up; a shortfall has exactly its one capture_shortfall error.</item>
/// <item>H3: every history row naming a hold belongs to a stored hold of that account (a capture is charged at most
/// once; its usage id is unique, which I3 checks).</item>
/// </list>
/// </summary>
public static class HoldInvariants
{
    public static void Check(LedgerSnapshot db, Action<string> violation)
    {
        var holdsByAccount = db.Holds.ToLookup(h => (h.Kind, h.AccountId));
        foreach (var (key, account) in db.Accounts)
        {
            var held = holdsByAccount[key].Where(h => h.Status == "active" && h.ExpiresAt > db.Now).Sum(h => h.Amount);
            if (held > account.Balance + account.QuotaLeft) violation($"H1 {key}: held {held} > balance {account.Balance} + quota left {account.QuotaLeft}");
        }

        var rowsByHold = db.Rows.Where(r => r.HoldId is not null).ToLookup(r => r.HoldId!.Value);
        var shortfallErrors = db.HoldErrors.Where(e => e.Type == "capture_shortfall").ToLookup(e => e.HoldId);
        var holds = db.Holds.ToDictionary(h => h.HoldId);
        foreach (var hold in db.Holds)
        {
            var rows = rowsByHold[hold.HoldId].ToList();
            var captured = hold.UsageId is not null;
            if ((hold.Status == "active") != (hold.EndedAt is null)) violation($"H2 hold {hold.HoldId}: status {hold.Status} with ended_at {hold.EndedAt}");
            if (hold.Status == "captured" && !captured) violation($"H2 hold {hold.HoldId}: captured without a capture");
            if (hold.Status is "active" or "voided" && captured) violation($"H2 hold {hold.HoldId}: {hold.Status} but captured by usage {hold.UsageId}");
            if (captured)
            {
                if (rows.Count != 1) violation($"H2 hold {hold.HoldId}: captured, {rows.Count} charge rows name it");
                else if (rows[0].UsageId != hold.UsageId || -rows[0].Amount + rows[0].QuotaUsed != hold.Charged || rows[0].Kind != hold.Kind || rows[0].Account != hold.AccountId)
                    violation($"H2 hold {hold.HoldId}: capture charged {hold.Charged} as usage {hold.UsageId}, row {rows[0].Kind} {rows[0].Account} {rows[0].Amount}+{rows[0].QuotaUsed} usage {rows[0].UsageId}");
                if (hold.Cost - hold.Charged != hold.Shortfall) violation($"H2 hold {hold.HoldId}: cost {hold.Cost} - charged {hold.Charged} != shortfall {hold.Shortfall}");
                var released = hold.Late == true ? 0m : Math.Max(0m, hold.Amount - hold.Charged!.Value);
                if (hold.Released != released) violation($"H2 hold {hold.HoldId}: released {hold.Released}, {released} expected");
                var errors = shortfallErrors[hold.HoldId].ToList();
                var expected = hold.Shortfall > 0 ? 1 : 0;
                if (errors.Count != expected || (expected == 1 && errors[0].Id != hold.ShortfallErrorId))
                    violation($"H2 hold {hold.HoldId}: shortfall {hold.Shortfall} with {errors.Count} capture_shortfall errors");
            }
            else if (rows.Count > 0) violation($"H2 hold {hold.HoldId}: {hold.Status}, not captured, yet {rows.Count} rows name it");
        }

        // A refused placement's claim: its one insufficient_balance error, of the same account (the answer of every copy).
        var refusalErrors = db.HoldErrors.Where(e => e.Type == "insufficient_balance").ToLookup(e => e.HoldId);
        foreach (var refused in db.RefusedHolds)
        {
            var errors = refusalErrors[refused.HoldId].ToList();
            if (errors.Count != 1 || errors[0].Id != refused.BillingErrorId || errors[0].ScopeId != refused.AccountId)
                violation($"H3 refused hold {refused.HoldId} of {refused.AccountId} names billing error {refused.BillingErrorId}, found {errors.Count} insufficient_balance error(s)");
        }

        foreach (var group in rowsByHold.Where(g => !holds.ContainsKey(g.Key)))
        {
            // Out of scope when the hold is another account's (a project's fallback marker names no hold; so none should).
            violation($"H3 {group.Count()} history rows name hold {group.Key}, which none of the accounts checked pays");
        }
    }
}
