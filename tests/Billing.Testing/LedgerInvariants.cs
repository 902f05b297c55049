namespace Billing.Testing;

/// <summary>
/// The ledger's invariants, checked on one consistent read of the billing tables: the one checker that the core tests, the cluster
/// tests, the bank test and the properties all use. Scoped to some accounts (tests sharing a database) or to all.
/// <list type="bullet">
/// <item>I1: balance = sum of history amounts, month_used = sum of quota_used, seq numbers the rows 1…version, every
/// row's balance_after is the running sum.</item>
/// <item>I2: no balance below zero, month_used within [0, monthly_quota].</item>
/// <item>I3: a usage id is charged at most once across project and user ledgers, and a charged usage record matches
/// its one charge row; a refused one has none; a project's fallback marker is 0 and its user really paid.</item>
/// <item>I5: each refused usage has exactly the one billing error it names.</item>
/// <item>A credit id is applied at most once per account.</item>
/// <item>H1–H3 of holds (<see cref="HoldInvariants"/>).</item>
/// <item>A project holds the first-project credit exactly when a <c>first_project_credit</c> claim names it (with its
/// creator), and then has its one first_project_credit row; a creator holds at most one.</item>
/// <item>G1: balance = sum of the remaining of the account's active grants; every row that moved grants moved its
/// amount on them (its entries add up to its amount).</item>
/// <item>The usage summary's rollup: <c>usage_hourly</c> plus each account's open hour are the sums of its usage rows
/// (<see cref="FindUsageRollupViolationsAsync"/>).</item>
/// <item>G2: 0 ≤ remaining ≤ amount; amount − remaining = what its entries took (charges, expiry, void); a grant's
/// entries belong to its own account; a scheduled grant is untouched; a grant counted at most once.</item>
/// </list>
/// </summary>
public static partial class LedgerInvariants
{
    /// <summary>Throws <see cref="LedgerViolationException"/> listing every violation found.</summary>
    public static async Task AssertHoldAsync(string connectionString, LedgerScope? scope = null)
    {
        var violations = await FindViolationsAsync(connectionString, scope);
        if (violations.Count > 0) throw new LedgerViolationException(violations);
    }

    public static async Task<IReadOnlyList<string>> FindViolationsAsync(string connectionString, LedgerScope? scope = null) =>
        [.. FindViolations(await LedgerSnapshot.ReadAsync(connectionString, scope)), .. await FindEventViolationsAsync(connectionString, scope),
         .. await FindUsageRollupViolationsAsync(connectionString, scope)];

    /// <summary>Every violation in a snapshot already read (the bank reads one and checks its clients' answers too).</summary>
    public static IReadOnlyList<string> FindViolations(LedgerSnapshot snapshot)
    {
        var violations = new List<string>();
        CheckAccounts(snapshot, violations.Add);
        CheckFirstProjectCredits(snapshot, violations.Add);
        CheckUsages(snapshot, violations.Add);
        CheckCredits(snapshot, violations.Add);
        HoldInvariants.Check(snapshot, violations.Add);
        CheckGrants(snapshot, violations.Add);
        return violations;
    }

    /// <summary>I1 and I2, per account.</summary>
    private static void CheckAccounts(LedgerSnapshot db, Action<string> violation)
    {
        var rowsByAccount = db.Rows.ToLookup(r => (r.Kind, r.Account));
        foreach (var (key, account) in db.Accounts)
        {
            decimal balance = 0, used = 0;
            long expectedSeq = 1;
            foreach (var row in rowsByAccount[key].OrderBy(r => r.Seq))
            {
                if (row.Seq != expectedSeq) violation($"I1 {key}: seq {row.Seq} where {expectedSeq} expected");
                expectedSeq = row.Seq + 1;
                balance += row.Amount;
                used += row.QuotaUsed;
                if (row.BalanceAfter != balance) violation($"I1 {key}: seq {row.Seq} balance_after {row.BalanceAfter} != running sum {balance}");
                if (row.BalanceAfter < 0) violation($"I2 {key}: seq {row.Seq} balance_after {row.BalanceAfter} < 0");
            }

            var count = rowsByAccount[key].Count();
            if (account.Balance != balance) violation($"I1 {key}: balance {account.Balance} != SUM(amount) {balance}");
            if (account.MonthUsed != used) violation($"I1 {key}: month_used {account.MonthUsed} != SUM(quota_used) {used}");
            if (account.Version != count) violation($"I1 {key}: version {account.Version} != {count} history rows");
            if (account.Balance < 0) violation($"I2 {key}: balance {account.Balance} < 0");
            if (account.MonthUsed < 0 || account.MonthUsed > account.MonthlyQuota) violation($"I2 {key}: month_used {account.MonthUsed} outside [0, {account.MonthlyQuota}]");
        }

        foreach (var missing in (db.Scope?.Users.Select(u => (AccountKind.User, u)) ?? []).Concat(db.Scope?.Projects.Select(p => (AccountKind.Project, p)) ?? []))
        {
            if (!db.Accounts.ContainsKey(missing)) violation($"{missing.Item1} {missing.Item2} has no account row");
        }

        foreach (var orphan in rowsByAccount.Where(g => !db.Accounts.ContainsKey(g.Key))) violation($"history rows of a missing account {orphan.Key}");
    }

    /// <summary>
    /// A project holds the first-project credit exactly when a <c>first_project_credit</c> claim names it and its
    /// creator; it then has exactly one first_project_credit row, every other account none; a creator holds at most one.
    /// </summary>
    private static void CheckFirstProjectCredits(LedgerSnapshot db, Action<string> violation)
    {
        var claims = db.FirstProjectClaims.ToDictionary(c => c.Project);
        foreach (var claim in db.FirstProjectClaims)
        {
            if (!db.Accounts.TryGetValue((AccountKind.Project, claim.Project), out var project)) violation($"first_project_credit claim of creator {claim.Creator} names a missing project {claim.Project}");
            else if (!project.FirstProjectCredit || project.Creator != claim.Creator)
                violation($"first_project_credit claim ({claim.Creator}, {claim.Project}) but the project has creator {project.Creator}, initial_credit_granted {project.FirstProjectCredit}");
        }

        var creditRows = db.Rows.Where(r => r.Reason == HistoryReasons.FirstProjectCredit).ToLookup(r => (r.Kind, r.Account));
        foreach (var (key, account) in db.Accounts)
        {
            if (account.FirstProjectCredit && !claims.ContainsKey(account.Id)) violation($"project {account.Id} has initial_credit_granted but no first_project_credit claim");
            var expected = account.FirstProjectCredit ? 1 : 0;
            if (creditRows[key].Count() != expected) violation($"{key}: {creditRows[key].Count()} first_project_credit rows where {expected} expected");
        }

        foreach (var creator in db.Accounts.Values.Where(a => a.Kind == AccountKind.Project && a.FirstProjectCredit).GroupBy(a => a.Creator))
        {
            if (creator.Count() > 1) violation($"creator {creator.Key} has {creator.Count()} first-project credits");
        }

        foreach (var claimsOfCreator in db.FirstProjectClaims.GroupBy(c => c.Creator).Where(g => g.Count() > 1))
            violation($"creator {claimsOfCreator.Key} has {claimsOfCreator.Count()} first_project_credit claims");
    }

    private static void CheckUsages(LedgerSnapshot db, Action<string> violation)
    {
        var chargeRows = db.Rows.Where(r => r.IsCharge).Concat(db.ChargesOutOfScope).ToList();
        foreach (var dup in chargeRows.GroupBy(r => r.UsageId).Where(g => g.Count() > 1))
            violation($"I3 usage {dup.Key} charged {dup.Count()} times: {string.Join(", ", dup.Select(d => $"{d.Kind} {d.Account} {d.Amount}"))}");

        var chargeByUsage = chargeRows.GroupBy(r => r.UsageId!.Value).ToDictionary(g => g.Key, g => g.First());
        foreach (var record in db.UsageRecords.Values)
        {
            var charged = chargeByUsage.TryGetValue(record.UsageId, out var row);
            if (record.Outcome == "charged")
            {
                if (!charged) violation($"I3 usage record {record.UsageId} charged but no charge row");
                else if (row!.PaidBy != record.PaidBy || row.Account != record.AccountId || row.BalanceAfter != record.BalanceAfter || -row.Amount + row.QuotaUsed != record.Cost)
                    violation($"I3 usage record {record.UsageId} ({record.PaidBy} {record.AccountId} cost {record.Cost} after {record.BalanceAfter}) != row ({row.Kind} {row.Account} {row.Amount} after {row.BalanceAfter})");
            }
            else if (charged) violation($"I3 usage {record.UsageId} refused but charged in {row!.Kind} {row.Account}");
        }

        foreach (var usage in chargeByUsage.Keys.Where(u => !db.UsageRecords.ContainsKey(u))) violation($"I3 charge row for usage {usage} without a usage record");

        foreach (var marker in db.Rows.Where(r => r.Kind == AccountKind.Project && r.Reason == HistoryReasons.AiUsageUserFallback))
        {
            if (marker.Amount != 0) violation($"I1 fallback marker {marker.Account}/{marker.Seq} has amount {marker.Amount}");
            if (!chargeByUsage.TryGetValue(marker.UsageId!.Value, out var paid) || paid.Kind != AccountKind.User)
                violation($"fallback marker for usage {marker.UsageId} but the user was not charged for it");
        }

        var errorsByUsage = db.BillingErrors.Where(e => e.UsageId is not null).GroupBy(e => e.UsageId!.Value).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var record in db.UsageRecords.Values.Where(r => r.Outcome == "refused"))
        {
            if (!errorsByUsage.TryGetValue(record.UsageId, out var list) || list.Count != 1) violation($"I5 refused usage {record.UsageId} has {list?.Count ?? 0} billing errors");
            else if (list[0].Id != record.BillingErrorId || list[0].Type != "insufficient_balance")
                violation($"I5 refused usage {record.UsageId} names error {record.BillingErrorId}, found {list[0].Id} {list[0].Type}");
        }

        foreach (var (usage, _) in errorsByUsage)
        {
            if (!db.UsageRecords.TryGetValue(usage, out var record) || record.Outcome != "refused") violation($"I5 billing error for usage {usage} that was not refused");
        }
    }

    /// <summary>G1 and G2 (credit grants, issue 12).</summary>
    private static void CheckGrants(LedgerSnapshot db, Action<string> violation)
    {
        var grantsByAccount = db.Grants.ToLookup(g => (g.Kind, g.Account));
        foreach (var (key, account) in db.Accounts)
        {
            var inEffect = grantsByAccount[key].Where(g => g.State == "active").Sum(g => g.Remaining);
            if (inEffect != account.Balance) violation($"G1 {key}: balance {account.Balance} != sum of active grants' remaining {inEffect}");
        }

        var entriesByGrant = db.GrantEntries.ToLookup(e => e.GrantId);
        foreach (var grant in db.Grants)
        {
            var entries = entriesByGrant[grant.GrantId].ToList();
            var credited = entries.Where(e => e.Amount > 0).Sum(e => e.Amount);
            var taken = -entries.Where(e => e.Amount < 0).Sum(e => e.Amount);
            var name = $"grant {grant.GrantId} of {grant.Kind} {grant.Account}";
            if (grant.Remaining < 0 || grant.Remaining > grant.Amount) violation($"G2 {name}: remaining {grant.Remaining} outside [0, {grant.Amount}]");
            if (entries.Any(e => e.Kind != grant.Kind || e.Account != grant.Account)) violation($"G2 {name}: an entry in another account");
            if (entries.Count(e => e.Amount > 0) > 1 || (credited != 0 && credited != grant.Amount)) violation($"G2 {name}: credited {credited} of {grant.Amount}");
            if (grant.State == "scheduled" && (entries.Count > 0 || grant.Remaining != grant.Amount)) violation($"G2 {name}: scheduled but touched");
            else if (grant.State == "voided" && entries.Count == 0) { if (grant.Remaining != 0) violation($"G2 {name}: voided with {grant.Remaining} left"); }
            else if (grant.State != "scheduled" && grant.Amount - grant.Remaining != taken)
                violation($"G2 {name}: amount {grant.Amount} - remaining {grant.Remaining} != {taken} taken by its entries");
            if (grant.State is "depleted" or "expired" or "voided" && grant.Remaining != 0) violation($"G2 {name}: {grant.State} with {grant.Remaining} left");
            if (grant.State == "active" && grant.Remaining == 0) violation($"G2 {name}: active with nothing left (should be depleted)");
        }

        var rows = db.Rows.ToDictionary(r => (r.Kind, r.Account, r.Seq));
        foreach (var byRow in db.GrantEntries.GroupBy(e => (e.Kind, e.Account, e.Seq)))
        {
            if (!rows.TryGetValue(byRow.Key, out var row)) violation($"G1 grant entries of a missing history row {byRow.Key}");
            else if (byRow.Sum(e => e.Amount) != row.Amount) violation($"G1 {byRow.Key}: entries add up to {byRow.Sum(e => e.Amount)}, the row's amount is {row.Amount}");
        }
    }

    private static void CheckCredits(LedgerSnapshot db, Action<string> violation)
    {
        foreach (var dup in db.Rows.Where(r => r.CreditId is not null).GroupBy(r => (r.Kind, r.Account, r.CreditId)).Where(g => g.Count() > 1))
            violation($"credit {dup.Key.CreditId} applied {dup.Count()} times to {dup.Key.Kind} {dup.Key.Account}");
    }
}

/// <summary>Which accounts to check; each must exist. Usage records, billing errors and claims follow the accounts.</summary>
public sealed record LedgerScope(IReadOnlyCollection<Guid> Users, IReadOnlyCollection<Guid> Projects)
{
    public static LedgerScope Of(IEnumerable<(AccountKind Kind, Guid Id)> accounts)
    {
        var list = accounts.ToList();
        return new LedgerScope(
            list.Where(a => a.Kind == AccountKind.User).Select(a => a.Id).Distinct().ToArray(),
            list.Where(a => a.Kind == AccountKind.Project).Select(a => a.Id).Distinct().ToArray());
    }
}

public sealed class LedgerViolationException(IReadOnlyList<string> violations)
    : Exception($"{violations.Count} ledger invariant violation(s):\n{string.Join('\n', violations.Take(50))}")
{
    public IReadOnlyList<string> Violations { get; } = violations;
}
