using Billing.Testing;

namespace Billing.Bank;

/// <summary>
/// Every grant answer a client received against the database (G1–G2 themselves are <see cref="LedgerInvariants"/>'):
/// an acknowledged grant is stored once, on its account, for its amount, with its one <c>grant_credit</c> row; one
/// past its expiry has expired (or was used up) with nobody calling; every <c>grant_expired</c> row is one of the
/// clients' expiring grants; no grant exists that neither a client nor an account's opening credit or top-up made.
/// </summary>
public static class GrantChecks
{
    public static void Run(LedgerSnapshot db, IReadOnlyCollection<Op> ops, Stats stats, Action<string> violation)
    {
        var grants = db.Grants.ToDictionary(g => g.GrantId);
        var grantOps = ops.Where(o => o.Type == OpType.Grant).ToDictionary(o => o.Key);
        var creditRows = db.Rows.Where(r => r.Reason == GrantReasons.GrantCredit).ToLookup(r => r.CreditId);
        var rows = db.Rows.ToDictionary(r => (r.Kind, r.Account, r.Seq));
        var entriesByGrant = db.GrantEntries.ToLookup(e => e.GrantId);

        foreach (var op in grantOps.Values)
        {
            grants.TryGetValue(op.Key, out var grant);
            switch (op.Answer?.Kind)
            {
                case OutcomeKind.Ok:
                    var a = op.Answer.Grant;
                    if (a is null || a.GrantId != op.Key || a.Amount != op.Amount) violation($"grant answered {op.Answer}: {op}");
                    if (grant is null || grant.Kind != op.Kind || grant.Account != op.Account || grant.Amount != op.Amount)
                    {
                        violation($"I4 acknowledged grant not stored as given: {grant?.ToString() ?? "missing"}: {op}");
                        break;
                    }

                    var credits = creditRows[op.Key].ToList();
                    if (credits.Count != 1 || credits[0].Kind != op.Kind || credits[0].Account != op.Account || credits[0].Amount != op.Amount)
                        violation($"I4 acknowledged grant has {credits.Count} grant_credit rows ({string.Join("; ", credits)}): {op}");

                    // Time ends it with nobody calling: past its expiry it is expired (or was used up first); without one it is still in effect or used up.
                    var ended = grant.State is "expired" or "depleted";
                    if (op.ExpiresAt is { } expiry && expiry < db.Now && !ended) violation($"G2 grant {op.Key} past its expiry {expiry:O} is {grant.State} at {db.Now:O}: {op}");
                    if (op.ExpiresAt is null && grant.State is not ("active" or "depleted")) violation($"grant {op.Key} without expiry is {grant.State}: {op}");
                    break;
                case null:
                    violation($"grant unresolved at check time: {op}");
                    break;
                default:
                    if (grant is not null) violation($"grant answered {op.Answer} but stored: {grant}: {op}");
                    violation($"grant answered {op.Answer}: {op}");
                    break;
            }
        }

        // Every grant is one a client gave, or an account's opening credit or top-up (its first entry's row says which).
        foreach (var grant in db.Grants.Where(g => !grantOps.ContainsKey(g.GrantId)))
        {
            var first = entriesByGrant[grant.GrantId].Where(e => e.Amount > 0).Select(e => rows.GetValueOrDefault((e.Kind, e.Account, e.Seq))).FirstOrDefault();
            if (first?.Reason is not (HistoryReasons.SignupCredit or HistoryReasons.FirstProjectCredit or HistoryReasons.TopUp))
                violation($"grant {grant.GrantId} ({grant.Kind} {grant.Account}, {grant.Amount}, {grant.State}) that no client gave; credited by {first?.ToString() ?? "no row"}");
        }

        // Every grant_expired row expires one of the clients' expiring grants, once.
        var expired = db.Rows.Where(r => r.Reason == GrantReasons.GrantExpired).ToList();
        var entriesByRow = db.GrantEntries.ToLookup(e => (e.Kind, e.Account, e.Seq));
        foreach (var row in expired)
        {
            var entries = entriesByRow[(row.Kind, row.Account, row.Seq)].ToList();
            if (entries.Count != 1 || !grantOps.TryGetValue(entries[0].GrantId, out var op) || op.ExpiresAt is null || op.Account != row.Account)
                violation($"grant_expired row {row.Kind} {row.Account} seq {row.Seq} ({row.Amount}) expires {string.Join(", ", entries.Select(e => e.GrantId))}, not a client's expiring grant");
        }

        foreach (var twice in expired.SelectMany(r => entriesByRow[(r.Kind, r.Account, r.Seq)]).GroupBy(e => e.GrantId).Where(g => g.Count() > 1))
            violation($"G2 grant {twice.Key} expired {twice.Count()} times");
        stats.GrantsExpired = expired.Count;
    }
}
