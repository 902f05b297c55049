using Billing.Testing;

namespace Billing.Bank;

/// <summary>
/// After the run: the ledger invariants (the kit's <see cref="LedgerInvariants"/>, on every account: I1–I3, I5, H1–H3,
/// G1–G2, and E1 on the outbox), then what only the bank knows — every answer its clients received against what the
/// database holds (I4, exactly one answer per id; holds and captures in <see cref="HoldChecks"/>, grants in
/// <see cref="GrantChecks"/>), the bank equation per account, and exactly one first-project credit per creator.
/// </summary>
public static partial class Checks
{
    public static async Task Run(string connectionString, IReadOnlyCollection<Op> ops, Stats stats, Action<string> violation, Action<string> info)
    {
        var db = await LedgerSnapshot.ReadAsync(connectionString);
        info($"database: {db.Accounts.Count} accounts, {db.Rows.Count} history rows, {db.UsageRecords.Count} usage records, {db.BillingErrors.Count} billing errors, " +
             $"{db.Holds.Count} holds, {db.Grants.Count} grants");
        foreach (var v in LedgerInvariants.FindViolations(db)) violation(v);
        foreach (var v in await LedgerInvariants.FindEventViolationsAsync(connectionString)) violation(v);
        foreach (var v in await LedgerInvariants.FindUsageRollupViolationsAsync(connectionString)) violation(v);

        var records = db.UsageRecords;
        var chargeByUsage = db.Rows.Where(r => r.IsCharge).GroupBy(r => r.UsageId!.Value).ToDictionary(g => g.Key, g => g.First());

        // I4 and exactly-one-answer: every answer a client received is what the database holds, and the database holds nothing nobody was answered.
        var usageOps = ops.Where(o => o.Type is OpType.Usage or OpType.PersonalUsage).ToDictionary(o => o.Key);
        var captureOps = ops.Where(o => o.Type == OpType.CaptureHold).ToDictionary(o => o.Key);
        foreach (var op in usageOps.Values)
        {
            records.TryGetValue(op.Key, out var record);
            switch (op.Answer?.Kind)
            {
                case OutcomeKind.Ok:
                    var a = op.Answer;
                    if (record is null || record.Outcome != "charged") violation($"I4 acknowledged usage not committed: {op} (record {record})");
                    else if (record.Cost != a.Cost || record.PaidBy != a.PaidBy || record.BalanceAfter != a.BalanceAfter)
                        violation($"I4 acknowledged {op} but stored {record}");
                    else if (!chargeByUsage.TryGetValue(op.Key, out var row) || row.BalanceAfter != a.BalanceAfter) violation($"I4 acknowledged {op} has no matching history row");
                    break;
                case OutcomeKind.Refused:
                    if (record is null || record.Outcome != "refused" || record.BillingErrorId != op.Answer.BillingErrorId)
                        violation($"I4/I5 refusal {op} not stored as answered (record {record})");
                    break;
                case OutcomeKind.NotFound:
                    if (record is not null) violation($"usage answered 404 but recorded: {op} / {record}");
                    break;
                case null:
                    violation($"unresolved at check time: {op}");
                    break;
            }
        }

        foreach (var record in records.Values.Where(r => !usageOps.ContainsKey(r.UsageId) && !captureOps.ContainsKey(r.UsageId))) violation($"usage record {record.UsageId} that no client sent");
        foreach (var record in records.Values.Where(r => usageOps.TryGetValue(r.UsageId, out var op) && op.Answer?.Kind is not (OutcomeKind.Ok or OutcomeKind.Refused)))
            violation($"usage {record.UsageId} stored as {record.Outcome} but the client's answer was {usageOps[record.UsageId].Answer}");
        // A capture's usage record: its charge, answered 200, or a late capture's refusal, answered 402 with that billing error.
        foreach (var record in records.Values.Where(r => captureOps.TryGetValue(r.UsageId, out var op) && !(
                     (op.Answer?.Kind == OutcomeKind.Ok && r.Outcome == "charged")
                     || (op.Answer?.Kind == OutcomeKind.Refused && r.Outcome == "refused" && r.BillingErrorId == op.Answer.BillingErrorId))))
            violation($"capture usage {record.UsageId} stored as {record.Outcome} ({record.BillingErrorId}) but the client's answer was {captureOps[record.UsageId].Answer}");

        HoldChecks.Run(db, ops, violation);
        GrantChecks.Run(db, ops, stats, violation);

        var creditOps = ops.Where(o => o.Type == OpType.TopUp).ToDictionary(o => o.Key);
        var grantOps = ops.Where(o => o.Type == OpType.Grant).ToDictionary(o => o.Key);
        var creditRows = db.Rows.Where(r => r.CreditId is not null && r.Reason != GrantReasons.GrantCredit).ToDictionary(r => r.CreditId!.Value);
        foreach (var op in creditOps.Values)
        {
            var stored = creditRows.TryGetValue(op.Key, out var row);
            if (op.Answer?.Kind == OutcomeKind.Ok && (!stored || row!.Amount != op.Amount || row.Account != op.Account))
                violation($"I4 acknowledged top-up not committed: {op}");
            if (op.Answer?.Kind != OutcomeKind.Ok && stored) violation($"top-up committed but answered {op.Answer}: {op}");
        }

        foreach (var row in creditRows.Values.Where(r => !creditOps.ContainsKey(r.CreditId!.Value))) violation($"credit row {row.CreditId} no client sent");

        // The bank: each balance equals its opening credit + acknowledged top-ups and grants − acknowledged charges and
        // captures it paid, from the clients' answers alone, − what expired of its grants (the grant_expired rows; that
        // each names a grant a client was given, and left only what charges had not taken, GrantChecks and G2 check).
        var expiredRows = db.Rows.Where(r => r.Reason == GrantReasons.GrantExpired).ToLookup(r => (r.Kind, r.Account));
        var otherRows = db.Rows.Where(r => r.Reason == GrantReasons.GrantVoided).ToList();
        foreach (var row in otherRows) violation($"{row.Reason} row {row.Kind} {row.Account} seq {row.Seq} that no client asked for");
        foreach (var account in db.Accounts.Values)
        {
            var opening = account.Kind == AccountKind.User ? 10.0000m : account.FirstProjectCredit ? 20.0000m : 0m;
            var topUps = creditOps.Values.Where(o => o.Answer?.Kind == OutcomeKind.Ok && o.Account == account.Id && o.Kind == account.Kind).Sum(o => o.Amount);
            var grants = grantOps.Values.Where(o => o.Answer?.Kind == OutcomeKind.Ok && o.Account == account.Id && o.Kind == account.Kind).Sum(o => o.Amount);
            var charges = usageOps.Values.Where(o => o.Answer?.Kind == OutcomeKind.Ok && o.Answer.PaidBy == account.PaidBy &&
                (account.Kind == AccountKind.User ? o.User == account.Id : o.Project == account.Id)).Sum(o => o.Answer!.Cost!.Value);
            var captured = captureOps.Values.Select(o => o.Answer?.Kind == OutcomeKind.Ok ? o.Answer.Capture : null)
                .Where(c => c is not null && c.DeductedFrom == account.PaidBy && c.AccountId == account.Id).Sum(c => c!.Charged - c.QuotaUsed);
            var expired = -expiredRows[(account.Kind, account.Id)].Sum(r => r.Amount);
            var expected = opening + topUps + grants - charges - captured - expired;
            if (expected != account.Balance)
                violation($"bank {account.PaidBy} {account.Id}: balance {account.Balance} != opening {opening} + top-ups {topUps} + grants {grants} - charges {charges} - captures {captured} - expired {expired} = {expected}");
        }

        // Exactly one first-project credit per creator (all initialisations were resolved; the checker says at most one).
        foreach (var creator in db.Accounts.Values.Where(a => a.Kind == AccountKind.Project).GroupBy(a => a.Creator))
        {
            var firsts = creator.Count(a => a.FirstProjectCredit);
            if (firsts != 1) violation($"creator {creator.Key} has {firsts} first-project credits over {creator.Count()} projects");
        }
    }
}
