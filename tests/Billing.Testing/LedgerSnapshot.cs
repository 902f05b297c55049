using System.Data;
using Npgsql;
using NpgsqlTypes;

namespace Billing.Testing;

/// <summary>
/// The billing tables as one consistent read sees them (one REPEATABLE READ transaction, so a check running beside
/// live commits never sees half of one): accounts, history rows, usage records, billing errors and first-project
/// credit claims. <see cref="LedgerInvariants"/> checks it; the bank also holds its clients' answers against it.
/// </summary>
public sealed class LedgerSnapshot
{
    /// <summary>The accounts asked for; null when every account was read.</summary>
    public required LedgerScope? Scope { get; init; }

    public required IReadOnlyDictionary<(AccountKind Kind, Guid Account), AccountRow> Accounts { get; init; }

    /// <summary>The history rows of the accounts in scope.</summary>
    public required IReadOnlyList<HistoryRow> Rows { get; init; }

    /// <summary>
    /// Rows of accounts out of scope that charge a usage id of the scope (a fallback's user charge, say), so that
    /// "at most one charge per usage id" holds across every account, not only the scoped ones. Empty when unscoped.
    /// </summary>
    public required IReadOnlyList<HistoryRow> ChargesOutOfScope { get; init; }

    public required IReadOnlyDictionary<Guid, UsageRecordRow> UsageRecords { get; init; }

    public required IReadOnlyList<BillingErrorRow> BillingErrors { get; init; }

    /// <summary>Rows of <c>first_project_credit</c> naming a project in scope (all of them when unscoped).</summary>
    public required IReadOnlyList<FirstProjectClaimRow> FirstProjectClaims { get; init; }

    /// <summary>Holds paid by the accounts in scope (every hold when unscoped), and the instant holds are judged at.</summary>
    public IReadOnlyList<HoldRow> Holds { get; init; } = [];

    /// <summary>When a hold past its expiry stops counting as held: the silos' clock (a test's may be moved), else the database's.</summary>
    public DateTimeOffset Now { get; init; }

    /// <summary>The refused placements' claims of their hold ids, of the accounts in scope.</summary>
    public IReadOnlyList<RefusedHoldRow> RefusedHolds { get; init; } = [];

    /// <summary>The billing errors of holds (those without a usage id), of the accounts in scope.</summary>
    public IReadOnlyList<HoldErrorRow> HoldErrors { get; init; } = [];

    /// <summary>The grants of the accounts in scope, and their entries (what each history row moved on each grant).</summary>
    public IReadOnlyList<GrantRow> Grants { get; init; } = [];

    public IReadOnlyList<GrantEntryRow> GrantEntries { get; init; } = [];

    /// <summary>Reads the scoped accounts (every account when <paramref name="scope"/> is null) and what they refer to.</summary>
    public static async Task<LedgerSnapshot> ReadAsync(string connectionString, LedgerScope? scope = null, DateTimeOffset? now = null)
    {
        // No pooling: the bank reads after restarting the server, when pooled connections are dead.
        await using var db = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await db.OpenAsync();
        await using var transaction = await db.BeginTransactionAsync(IsolationLevel.RepeatableRead);
        var snapshot = await ReadAsync(db, scope);
        var holds = await HoldRow.ReadAsync(db, scope);
        var holdErrors = await HoldErrorRow.ReadAsync(db, scope);
        var refusedHolds = await RefusedHoldRow.ReadAsync(db, scope);
        await using var clock = new NpgsqlCommand("SELECT now()", db);
        var databaseNow = (DateTime)(await clock.ExecuteScalarAsync())!;
        await transaction.CommitAsync();
        return new LedgerSnapshot
        {
            Scope = snapshot.Scope, Accounts = snapshot.Accounts, Rows = snapshot.Rows, ChargesOutOfScope = snapshot.ChargesOutOfScope,
            UsageRecords = snapshot.UsageRecords, BillingErrors = snapshot.BillingErrors, FirstProjectClaims = snapshot.FirstProjectClaims,
            Grants = snapshot.Grants, GrantEntries = snapshot.GrantEntries,
            Holds = holds, HoldErrors = holdErrors, RefusedHolds = refusedHolds, Now = now ?? new DateTimeOffset(DateTime.SpecifyKind(databaseNow, DateTimeKind.Utc)),
        };
    }

    private static async Task<LedgerSnapshot> ReadAsync(NpgsqlConnection db, LedgerScope? scope)
    {
        Guid[]? users = scope?.Users.ToArray();
        Guid[]? projects = scope?.Projects.ToArray();
        var accounts = new Dictionary<(AccountKind, Guid), AccountRow>();
        foreach (var a in await Query(db, """
                     SELECT "user", balance, month_used, monthly_quota, version FROM user_billing WHERE $1::uuid[] IS NULL OR "user" = ANY($1)
                     """, r => new AccountRow(AccountKind.User, r.GetGuid(0), r.GetDecimal(1), r.GetDecimal(2), r.GetDecimal(3), r.GetInt64(4), false, null), users))
            accounts[(a.Kind, a.Id)] = a;
        foreach (var a in await Query(db, """
                     SELECT project, balance, month_used, monthly_quota, version, initial_credit_granted, "user"
                     FROM project_billing WHERE $1::uuid[] IS NULL OR project = ANY($1)
                     """, r => new AccountRow(AccountKind.Project, r.GetGuid(0), r.GetDecimal(1), r.GetDecimal(2), r.GetDecimal(3), r.GetInt64(4), r.GetBoolean(5), r.GetGuid(6)), projects))
            accounts[(a.Kind, a.Id)] = a;

        var rows = new List<HistoryRow>();
        rows.AddRange(await Query(db, $"SELECT \"user\", {HistoryColumns} FROM user_billing_history WHERE $1::uuid[] IS NULL OR \"user\" = ANY($1)",
            r => History(AccountKind.User, r), users));
        rows.AddRange(await Query(db, $"SELECT project, {HistoryColumns} FROM project_billing_history WHERE $1::uuid[] IS NULL OR project = ANY($1)",
            r => History(AccountKind.Project, r), projects));

        // Usage records and billing errors of the scoped accounts: those they paid or refused, and those their rows name.
        var scopedIds = scope is null ? null : users!.Concat(projects!).ToArray();
        var rowUsages = scope is null ? null : rows.Where(r => r.UsageId is not null).Select(r => r.UsageId!.Value).Distinct().ToArray();
        var errors = await Query(db, """
            SELECT id, usage_id, scope, error_type FROM billing_error WHERE $1::uuid[] IS NULL OR scope_id = ANY($1)
            """, r => new BillingErrorRow(r.GetGuid(0), r.IsDBNull(1) ? null : r.GetGuid(1), r.GetString(2), r.GetString(3)), scopedIds);
        var errorUsages = scope is null ? null : errors.Where(e => e.UsageId is not null).Select(e => e.UsageId!.Value).ToArray();
        var records = (await Query(db, """
            SELECT usage_id, outcome, paid_by, account_id, cost, balance_after, quota_used, billing_error_id FROM usage_record
            WHERE $1::uuid[] IS NULL OR account_id = ANY($1) OR usage_id = ANY($2) OR usage_id = ANY($3)
            """, r => new UsageRecordRow(r.GetGuid(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetGuid(3),
                r.GetDecimal(4), r.IsDBNull(5) ? null : r.GetDecimal(5), r.GetDecimal(6), r.IsDBNull(7) ? null : r.GetGuid(7)),
            scopedIds, rowUsages ?? [], errorUsages ?? [])).ToDictionary(u => u.UsageId);

        var outOfScope = new List<HistoryRow>();
        if (scope is not null)
        {
            var usages = rowUsages!.Concat(records.Keys).Distinct().ToArray();
            outOfScope.AddRange((await Query(db, $"SELECT \"user\", {HistoryColumns} FROM user_billing_history WHERE usage_id = ANY($1) AND NOT \"user\" = ANY($2)",
                r => History(AccountKind.User, r), usages, users)).Where(r => r.IsCharge));
            outOfScope.AddRange((await Query(db, $"SELECT project, {HistoryColumns} FROM project_billing_history WHERE usage_id = ANY($1) AND NOT project = ANY($2)",
                r => History(AccountKind.Project, r), usages, projects)).Where(r => r.IsCharge));
        }

        var claims = await Query(db, """
            SELECT creator, project FROM first_project_credit WHERE $1::uuid[] IS NULL OR project = ANY($1)
            """, r => new FirstProjectClaimRow(r.GetGuid(0), r.GetGuid(1)), projects);

        const string grantScope = """
            WHERE $1::uuid[] IS NULL OR (scope = 'user' AND account_id = ANY($1)) OR (scope = 'project' AND account_id = ANY($2))
            """;
        var grants = await Query(db, "SELECT scope, account_id, grant_id, amount, remaining, state FROM credit_grant " + grantScope,
            r => new GrantRow(Kind(r.GetString(0)), r.GetGuid(1), r.GetGuid(2), r.GetDecimal(3), r.GetDecimal(4), r.GetString(5)), users, projects);
        var entries = await Query(db, "SELECT scope, account_id, seq, grant_id, amount FROM credit_grant_movement " + grantScope,
            r => new GrantEntryRow(Kind(r.GetString(0)), r.GetGuid(1), r.GetInt64(2), r.GetGuid(3), r.GetDecimal(4)), users, projects);

        return new LedgerSnapshot
        {
            Scope = scope, Accounts = accounts, Rows = rows, ChargesOutOfScope = outOfScope, UsageRecords = records, BillingErrors = errors, FirstProjectClaims = claims,
            Grants = grants, GrantEntries = entries,
        };
    }

    private static AccountKind Kind(string scope) => scope == "project" ? AccountKind.Project : AccountKind.User;

    private const string HistoryColumns = "seq, amount, quota_used, reason, balance_after, usage_id, credit_id, hold_id";

    private static HistoryRow History(AccountKind kind, NpgsqlDataReader r) => new(
        kind, r.GetGuid(0), r.GetInt64(1), r.GetDecimal(2), r.GetDecimal(3), r.GetString(4), r.GetDecimal(5),
        r.IsDBNull(6) ? null : r.GetGuid(6), r.IsDBNull(7) ? null : r.GetGuid(7)) { HoldId = r.IsDBNull(8) ? null : r.GetGuid(8) };

    internal static async Task<List<T>> Query<T>(NpgsqlConnection db, string sql, Func<NpgsqlDataReader, T> read, params Guid[]?[] ids)
    {
        await using var command = new NpgsqlCommand(sql, db);
        foreach (var list in ids) command.Parameters.Add(new NpgsqlParameter { Value = (object?)list ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        await using var reader = await command.ExecuteReaderAsync();
        var result = new List<T>();
        while (await reader.ReadAsync()) result.Add(read(reader));
        return result;
    }
}

/// <summary>An account row; <paramref name="Creator"/> and <paramref name="FirstProjectCredit"/> (initial_credit_granted) for projects.</summary>
public sealed record AccountRow(AccountKind Kind, Guid Id, decimal Balance, decimal MonthUsed, decimal MonthlyQuota, long Version, bool FirstProjectCredit, Guid? Creator)
{
    /// <summary>What is left of a pro account's monthly quota (0 when not pro: monthly_quota is 0 then).</summary>
    public decimal QuotaLeft => Math.Max(0m, MonthlyQuota - MonthUsed);

    public string PaidBy => Kind == AccountKind.Project ? "project" : "user";
}

public sealed record HistoryRow(AccountKind Kind, Guid Account, long Seq, decimal Amount, decimal QuotaUsed, string Reason, decimal BalanceAfter, Guid? UsageId, Guid? CreditId)
{
    /// <summary>The hold a capture's row settles.</summary>
    public Guid? HoldId { get; init; }

    /// <summary>A row that charges a usage: the project's own charge, or the user's personal or fallback charge.</summary>
    public bool IsCharge => UsageId is not null && (Kind == AccountKind.Project
        ? Reason == HistoryReasons.AiUsage
        : Reason is HistoryReasons.AiUsagePersonal or HistoryReasons.AiUsageUserFallback);

    /// <summary><c>usage_record.paid_by</c> of a charge in this row's ledger.</summary>
    public string PaidBy => Kind == AccountKind.Project ? "project" : "user";
}

public sealed record UsageRecordRow(Guid UsageId, string Outcome, string? PaidBy, Guid? AccountId, decimal Cost, decimal? BalanceAfter, decimal QuotaUsed, Guid? BillingErrorId);

public sealed record BillingErrorRow(Guid Id, Guid? UsageId, string Scope, string Type);

/// <summary>A row of <c>first_project_credit</c>: the project that took its creator's one first-project credit.</summary>
public sealed record FirstProjectClaimRow(Guid Creator, Guid Project);

/// <summary>A row of <c>credit_grant</c> (<paramref name="State"/>: scheduled, active, depleted, expired or voided).</summary>
public sealed record GrantRow(AccountKind Kind, Guid Account, Guid GrantId, decimal Amount, decimal Remaining, string State);

/// <summary>A row of <c>credit_grant_movement</c> (an entry, or a history row naming its one grant): what history row <paramref name="Seq"/> moved on a grant, with the row's sign.</summary>
public sealed record GrantEntryRow(AccountKind Kind, Guid Account, long Seq, Guid GrantId, decimal Amount);
