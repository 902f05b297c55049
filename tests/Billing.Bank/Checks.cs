using Npgsql;

namespace Billing.Bank;

/// <summary>The invariants, checked in SQL after the run against every answer the clients received.</summary>
public static class Checks
{
    private sealed record Row(string Table, Guid Account, long Seq, decimal Amount, decimal QuotaUsed, string Reason, decimal BalanceAfter, Guid? UsageId, Guid? CreditId);

    private sealed record UsageRecord(Guid UsageId, string Outcome, string? PaidBy, Guid? AccountId, decimal Cost, decimal? BalanceAfter, decimal QuotaUsed, Guid? BillingErrorId);

    public static async Task Run(string connectionString, IReadOnlyCollection<Op> ops, Action<string> violation, Action<string> info)
    {
        await using var db = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString); // pooled connections died with the restarts
        await db.OpenAsync();

        async Task<List<T>> Query<T>(string sql, Func<NpgsqlDataReader, T> read)
        {
            await using var cmd = new NpgsqlCommand(sql, db);
            await using var r = await cmd.ExecuteReaderAsync();
            var list = new List<T>();
            while (await r.ReadAsync()) list.Add(read(r));
            return list;
        }

        static Guid? G(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetGuid(i);
        static decimal? D(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetDecimal(i);

        var accounts = new Dictionary<(string, Guid), (decimal Balance, decimal MonthUsed, decimal Quota, long Version, bool FirstCredit, Guid? Creator)>();
        foreach (var a in await Query("SELECT \"user\", balance, month_used, monthly_quota, version FROM user_billing",
                     r => (r.GetGuid(0), r.GetDecimal(1), r.GetDecimal(2), r.GetDecimal(3), r.GetInt64(4))))
            accounts[("user", a.Item1)] = (a.Item2, a.Item3, a.Item4, a.Item5, false, null);
        foreach (var a in await Query("SELECT project, balance, month_used, monthly_quota, version, initial_credit_granted, \"user\" FROM project_billing",
                     r => (r.GetGuid(0), r.GetDecimal(1), r.GetDecimal(2), r.GetDecimal(3), r.GetInt64(4), r.GetBoolean(5), r.GetGuid(6))))
            accounts[("project", a.Item1)] = (a.Item2, a.Item3, a.Item4, a.Item5, a.Item6, a.Item7);

        const string cols = "seq, amount, quota_used, reason, balance_after, usage_id, credit_id";
        var rows = new List<Row>();
        rows.AddRange(await Query($"SELECT \"user\", {cols} FROM user_billing_history ORDER BY \"user\", seq",
            r => new Row("user", r.GetGuid(0), r.GetInt64(1), r.GetDecimal(2), r.GetDecimal(3), r.GetString(4), r.GetDecimal(5), G(r, 6), G(r, 7))));
        rows.AddRange(await Query($"SELECT project, {cols} FROM project_billing_history ORDER BY project, seq",
            r => new Row("project", r.GetGuid(0), r.GetInt64(1), r.GetDecimal(2), r.GetDecimal(3), r.GetString(4), r.GetDecimal(5), G(r, 6), G(r, 7))));
        var records = (await Query("SELECT usage_id, outcome, paid_by, account_id, cost, balance_after, quota_used, billing_error_id FROM usage_record",
            r => new UsageRecord(r.GetGuid(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), G(r, 3), r.GetDecimal(4), D(r, 5), r.GetDecimal(6), G(r, 7))))
            .ToDictionary(u => u.UsageId);
        var errors = await Query("SELECT id, usage_id, scope, error_type FROM billing_error", r => (Id: r.GetGuid(0), UsageId: G(r, 1), Scope: r.GetString(2), Type: r.GetString(3)));
        info($"database: {accounts.Count} accounts, {rows.Count} history rows, {records.Count} usage records, {errors.Count} billing errors");

        // I1: balance = SUM(amount), month_used = SUM(quota_used), version = last seq, seq 1..n, balance_after = running sum. I2 too.
        foreach (var group in rows.GroupBy(r => (r.Table, r.Account)))
        {
            if (!accounts.TryGetValue(group.Key, out var account))
            {
                violation($"history rows of a missing account {group.Key}");
                continue;
            }

            decimal balance = 0, used = 0;
            long expectedSeq = 1;
            foreach (var row in group.OrderBy(r => r.Seq))
            {
                if (row.Seq != expectedSeq++) violation($"I1 {group.Key}: seq {row.Seq} where {expectedSeq - 1} expected");
                balance += row.Amount;
                used += row.QuotaUsed;
                if (row.BalanceAfter != balance) violation($"I1 {group.Key}: seq {row.Seq} balance_after {row.BalanceAfter} != running sum {balance}");
                if (row.BalanceAfter < 0) violation($"I2 {group.Key}: seq {row.Seq} balance_after {row.BalanceAfter} < 0");
            }

            if (account.Balance != balance) violation($"I1 {group.Key}: balance {account.Balance} != SUM(amount) {balance}");
            if (account.MonthUsed != used) violation($"I1 {group.Key}: month_used {account.MonthUsed} != SUM(quota_used) {used}");
            if (account.Version != group.Count()) violation($"I1 {group.Key}: version {account.Version} != {group.Count()} rows");
        }

        foreach (var (key, a) in accounts)
        {
            if (!rows.Any(r => (r.Table, r.Account) == key) && (a.Balance != 0 || a.Version != 0)) violation($"I1 {key}: balance {a.Balance} with no history");
            if (a.Balance < 0) violation($"I2 {key}: balance {a.Balance} < 0");
            if (a.MonthUsed < 0 || a.MonthUsed > a.Quota) violation($"I2 {key}: month_used {a.MonthUsed} outside [0, {a.Quota}]");
        }

        // I3: a usage id is charged at most once across both ledgers; each charge row matches its usage record.
        var chargeRows = rows.Where(r => r.UsageId is not null &&
            ((r.Table == "project" && r.Reason == "ai_usage") || (r.Table == "user" && r.Reason is "ai_usage_personal" or "ai_usage_user_fallback"))).ToList();
        foreach (var dup in chargeRows.GroupBy(r => r.UsageId).Where(g => g.Count() > 1))
            violation($"I3 usage {dup.Key} charged {dup.Count()} times: {string.Join(", ", dup.Select(d => $"{d.Table} {d.Account} {d.Amount}"))}");
        var chargeByUsage = chargeRows.GroupBy(r => r.UsageId!.Value).ToDictionary(g => g.Key, g => g.First());
        foreach (var record in records.Values)
        {
            var charged = chargeByUsage.TryGetValue(record.UsageId, out var row);
            if (record.Outcome == "charged")
            {
                if (!charged) violation($"I3 usage record {record.UsageId} charged but no charge row");
                else if (row!.Table != record.PaidBy || row.Account != record.AccountId || row.BalanceAfter != record.BalanceAfter || -row.Amount + row.QuotaUsed != record.Cost)
                    violation($"I3 usage record {record.UsageId} ({record.PaidBy} {record.AccountId} cost {record.Cost} after {record.BalanceAfter}) != row ({row.Table} {row.Account} {row.Amount} after {row.BalanceAfter})");
            }
            else if (charged) violation($"I3 usage {record.UsageId} refused but charged in {row!.Table} {row.Account}");
        }

        foreach (var usage in chargeByUsage.Keys.Where(u => !records.ContainsKey(u))) violation($"I3 charge row for usage {usage} without a usage record");
        // The project's zero-amount marker of a fallback: amount 0, and the user really paid that usage.
        foreach (var marker in rows.Where(r => r.Table == "project" && r.Reason == "ai_usage_user_fallback"))
        {
            if (marker.Amount != 0) violation($"I1 fallback marker {marker.Account}/{marker.Seq} has amount {marker.Amount}");
            if (!chargeByUsage.TryGetValue(marker.UsageId!.Value, out var paid) || paid.Table != "user")
                violation($"fallback marker for usage {marker.UsageId} but the user was not charged for it");
        }

        // I5: exactly one billing error per refused usage record, the one it names; none for anything else.
        var errorsByUsage = errors.Where(e => e.UsageId is not null).GroupBy(e => e.UsageId!.Value).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var record in records.Values.Where(r => r.Outcome == "refused"))
        {
            if (!errorsByUsage.TryGetValue(record.UsageId, out var list) || list.Count != 1) violation($"I5 refused usage {record.UsageId} has {list?.Count ?? 0} billing errors");
            else if (list[0].Id != record.BillingErrorId || list[0].Type != "insufficient_balance") violation($"I5 refused usage {record.UsageId} names error {record.BillingErrorId}, found {list[0].Id} {list[0].Type}");
        }

        foreach (var (usage, list) in errorsByUsage)
            if (!records.TryGetValue(usage, out var r) || r.Outcome != "refused") violation($"I5 billing error for usage {usage} that was not refused");

        // Credit ids at most once per account.
        foreach (var dup in rows.Where(r => r.CreditId is not null).GroupBy(r => (r.Table, r.Account, r.CreditId)).Where(g => g.Count() > 1))
            violation($"top-up {dup.Key.CreditId} applied {dup.Count()} times to {dup.Key.Table} {dup.Key.Account}");

        // I4 and exactly-one-answer: every answer a client received is what the database holds, and the database holds nothing nobody was answered.
        var usageOps = ops.Where(o => o.Type is OpType.Usage or OpType.PersonalUsage).ToDictionary(o => o.Key);
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

        foreach (var record in records.Values.Where(r => !usageOps.ContainsKey(r.UsageId))) violation($"usage record {record.UsageId} that no client sent");
        foreach (var record in records.Values.Where(r => usageOps.TryGetValue(r.UsageId, out var op) && op.Answer?.Kind is not (OutcomeKind.Ok or OutcomeKind.Refused)))
            violation($"usage {record.UsageId} stored as {record.Outcome} but the client's answer was {usageOps[record.UsageId].Answer}");

        var creditOps = ops.Where(o => o.Type == OpType.TopUp).ToDictionary(o => o.Key);
        var creditRows = rows.Where(r => r.CreditId is not null).ToDictionary(r => r.CreditId!.Value);
        foreach (var op in creditOps.Values)
        {
            var stored = creditRows.TryGetValue(op.Key, out var row);
            if (op.Answer?.Kind == OutcomeKind.Ok && (!stored || row!.Amount != op.Amount || row.Account != op.Account))
                violation($"I4 acknowledged top-up not committed: {op}");
            if (op.Answer?.Kind != OutcomeKind.Ok && stored) violation($"top-up committed but answered {op.Answer}: {op}");
        }

        foreach (var row in creditRows.Values.Where(r => !creditOps.ContainsKey(r.CreditId!.Value))) violation($"credit row {row.CreditId} no client sent");

        // The bank: each balance equals its opening credit + acknowledged top-ups − acknowledged charges it paid, from the clients' answers alone.
        foreach (var ((table, id), account) in accounts)
        {
            var opening = table == "user" ? 10.0000m : account.FirstCredit ? 20.0000m : 0m;
            var topUps = creditOps.Values.Where(o => o.Answer?.Kind == OutcomeKind.Ok && o.Account == id && (o.Kind == AccountKind.User) == (table == "user")).Sum(o => o.Amount);
            var charges = usageOps.Values.Where(o => o.Answer?.Kind == OutcomeKind.Ok && o.Answer.PaidBy == table &&
                (table == "user" ? o.User == id : o.Project == id)).Sum(o => o.Answer!.Cost!.Value);
            var expected = opening + topUps - charges;
            if (expected != account.Balance) violation($"bank {table} {id}: balance {account.Balance} != opening {opening} + top-ups {topUps} - charges {charges} = {expected}");
        }

        // Exactly one first-project credit per creator (all initialisations were resolved).
        foreach (var creator in accounts.Where(a => a.Key.Item1 == "project").GroupBy(a => a.Value.Creator))
        {
            var firsts = creator.Count(a => a.Value.FirstCredit);
            if (firsts != 1) violation($"creator {creator.Key} has {firsts} first-project credits over {creator.Count()} projects");
        }

        var firstRows = rows.Count(r => r.Reason == "first_project_credit");
        if (firstRows != accounts.Count(a => a.Value.FirstCredit)) violation($"{firstRows} first_project_credit rows but {accounts.Count(a => a.Value.FirstCredit)} accounts granted it");
    }
}
