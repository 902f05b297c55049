using Billing.Accounts;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary>
/// Everything one account commit writes, in one statement: the account row moved to <see cref="After"/> (only if it is
/// still at <see cref="ExpectedVersion"/>), its new history rows, the usage records of its charges, and the open
/// insufficient-balance errors it resolves. A feature that writes another table adds a list here and a part to
/// <see cref="LedgerStatements"/>.
/// </summary>
public sealed record LedgerCommit(
    AccountState After,
    long ExpectedVersion,
    IReadOnlyList<LedgerRow> Rows,
    IReadOnlyList<UsageReceipt> Charges,
    bool ResolveInsufficientBalanceErrors,
    HoldWrites? Holds = null,
    Billing.Events.LedgerEvents? Events = null,
    GrantWrites? Grants = null)
{
    private GrantWrites? grantWrites;

    /// <summary>The grant rows to write: <see cref="Grants"/>, or when not given, what <see cref="Rows"/> do to grants.</summary>
    public GrantWrites GrantWrites => grantWrites ??= Grants ?? GrantWrites.From(Rows);
}

/// <summary>A new account and its opening history row (if any).</summary>
public sealed record AccountCreation(AccountState Account, LedgerRow? OpeningRow)
{
    public IReadOnlyList<LedgerRow> Rows { get; } = OpeningRow is null ? [] : [OpeningRow];

    /// <summary>The grant its opening row creates.</summary>
    public GrantWrites Grants => GrantWrites.From(Rows);
}

/// <summary>A project account created together with its claim of the creator's first-project credit.</summary>
public sealed record ProjectCreation(AccountState Account, LedgerRow CreditRow)
{
    public IReadOnlyList<LedgerRow> Rows { get; } = [CreditRow];

    /// <summary>The first-project grant, written only when the claim is granted.</summary>
    public GrantWrites Grants => GrantWrites.From(Rows);
}

/// <summary>
/// The ledger's statements, built once per account table from one mapping per table: a new column is one line in
/// <see cref="AccountColumns{TInput}"/>, <see cref="HistoryRows{TInput}"/> or the usage-record part; a new table is one
/// more part of <see cref="Commit"/>. Each is one statement, one round trip, one implicit transaction.
/// </summary>
public static class LedgerStatements
{
    // One commit statement per account table and shape, built when first needed (at most 2 × 16, a handful in use).
    private static readonly SqlStatement<LedgerCommit>?[,] Commits = new SqlStatement<LedgerCommit>?[2, (int)CommitShape.All + 1];
    private static readonly SqlStatement<AccountCreation>[] Creations = [BuildCreation(AccountTable.Users), BuildCreation(AccountTable.Projects)];

    /// <summary>
    /// A project account and its claim of the creator's one first-project credit, in one statement: the claim row
    /// (skipped when the project already exists; ON CONFLICT DO NOTHING when the creator's credit is taken), the
    /// account (balance, version and initial_credit_granted follow the claim) and its opening credit row. A concurrent
    /// creation of the same project for another creator fails the claim's foreign key, and so the whole statement.
    /// Returns <c>created</c> (1 or 0) and <c>first_project</c>.
    /// </summary>
    public static SqlStatement<ProjectCreation> CreateProject { get; } = BuildProjectCreation();

    /// <summary>
    /// The commit of one account, with only the parts <paramref name="commit"/> writes; its one result row's
    /// <c>written</c> is 1 when written, 0 on a version conflict.
    /// </summary>
    public static SqlStatement<LedgerCommit> Commit(LedgerCommit commit) => Commit(commit.After.Kind, ShapeOf(commit));

    /// <summary>The commit statement of one account table and shape.</summary>
    public static SqlStatement<LedgerCommit> Commit(AccountKind kind, CommitShape shape) =>
        // Benign race: two threads may build the same immutable statement, of the same text.
        Commits[(int)kind, (int)shape] ??= BuildCommit(AccountTable.For(kind), shape);

    /// <summary>
    /// Which groups of parts a commit writes. A usage commit has no holds or events to write: leaving their parts out
    /// of its statement spares PostgreSQL their parameters and plan nodes, which cost more than the rows it writes.
    /// </summary>
    [Flags]
    public enum CommitShape
    {
        AccountAndHistory = 0,
        Charges = 1,
        ErrorsAndEvents = 2,
        Holds = 4,
        Grants = 8,
        All = Charges | ErrorsAndEvents | Holds | Grants,
    }

    public static CommitShape ShapeOf(LedgerCommit commit)
    {
        var shape = CommitShape.AccountAndHistory;
        if (commit.Charges.Count > 0) shape |= CommitShape.Charges;
        if (commit.ResolveInsufficientBalanceErrors || commit.Events is { Rows.Count: > 0 }) shape |= CommitShape.ErrorsAndEvents;
        if (commit.Holds is { } holds && (holds.Inserted.Count > 0 || holds.Ended.Count > 0 || holds.Shortfalls.Count > 0)) shape |= CommitShape.Holds;
        var grants = commit.GrantWrites;
        if (grants.Created.Count > 0 || grants.Changed.Count > 0 || grants.Entries.Count > 0) shape |= CommitShape.Grants;
        return shape;
    }

    /// <summary>The creation of one account; <c>created</c> is 1 when created, 0 when it already existed.</summary>
    public static SqlStatement<AccountCreation> Create(AccountKind kind) => Creations[(int)kind];

    private static SqlStatement<LedgerCommit> BuildCommit(AccountTable table, CommitShape shape)
    {
        var p = new SqlParameters<LedgerCommit>();
        var account = p.Value("account_id", "uuid", c => c.After.Id);
        string? nowPlaceholder = null; // declared by the first part that needs it: a shape without one has no unused parameter
        string Now() => nowPlaceholder ??= p.Value("now", "timestamptz", c => c.After.UpdatedAt);
        var set = AccountColumns(p, c => c.After);
        var expectedVersion = p.Value("expected_version", "bigint", c => c.ExpectedVersion);
        var expectedHoldsVersion = p.Value("expected_holds_seq", "bigint", c => c.Holds?.ExpectedHoldsVersion ?? c.After.HoldsVersion);

        var assignments = string.Join(", ", set.Select(c => c.Column + " = " + c.Value));
        var accountUpdate = $"""
            UPDATE {table.Accounts} SET {assignments}
            WHERE {table.Key} = {account} AND version = {expectedVersion} AND holds_seq = {expectedHoldsVersion}
            RETURNING 1 AS ok
            """;
        List<(string Name, string Sql)> parts = [("acct", accountUpdate), ("hist", HistoryRows(p, table, account, c => c.Rows).Sql(gate: "acct"))];
        if (shape.HasFlag(CommitShape.Charges)) parts.Add(("usage", UsageRecords(p, account, Now())));
        if (shape.HasFlag(CommitShape.ErrorsAndEvents))
        {
            parts.Add(("resolved", ResolveErrors(p, table, account, Now())));
            parts.AddRange(EventStatements.CommitParts(p, Now()));
        }

        if (shape.HasFlag(CommitShape.Holds)) parts.AddRange(HoldStatements.CommitParts(p, table, account, Now()));
        if (shape.HasFlag(CommitShape.Grants)) parts.AddRange(GrantStatements.Parts(p, table, account, Now(), c => c.GrantWrites, gate: "acct"));
        return p.Build(With([.. parts], "SELECT count(*) AS written FROM acct"));
    }

    /// <summary>The usage records of the commit's charges.</summary>
    private static string UsageRecords(SqlParameters<LedgerCommit> p, string account, string now) =>
        new ArrayInsert<LedgerCommit, UsageReceipt>(p, "usage_record", "usage", c => c.Charges)
            .Column("usage_id", "uuid", u => u.UsageId)
            .Shared("outcome", "'charged'")
            .Shared("paid_by", p.Value("paid_by", "text", c => c.After.Kind == AccountKind.Project ? "project" : "user"))
            .Shared("account_id", account)
            .Column("cost", "numeric", u => u.Cost)
            .Column("currency", "text", u => u.Currency)
            .Column("input_tokens", "bigint", u => u.InputTokens)
            .Column("output_tokens", "bigint", u => u.OutputTokens)
            .Column("balance_after", "numeric", u => u.BalanceAfter)
            .Column("quota_used", "numeric", u => u.QuotaUsed)
            .Shared("created_at", now)
            .Sql(gate: "acct");

    /// <summary>The account's open insufficient-balance errors, resolved when the commit says so (read by the events part).</summary>
    private static string ResolveErrors(SqlParameters<LedgerCommit> p, AccountTable table, string account, string now)
    {
        var resolving = p.Value("resolve_insufficient_balance_errors", "boolean", c => c.ResolveInsufficientBalanceErrors);
        var scope = p.Value("scope", "text", _ => table.Scope);
        return $"""
            UPDATE billing_error SET resolved = true, resolved_at = {now}
            FROM acct
            WHERE {resolving} AND scope = {scope} AND scope_id = {account}
              AND error_type = 'insufficient_balance' AND NOT resolved
            RETURNING billing_error.id, billing_error.scope, billing_error.scope_id, billing_error.error_type
            """;
    }

    private static SqlStatement<AccountCreation> BuildCreation(AccountTable table)
    {
        var p = new SqlParameters<AccountCreation>();
        var account = p.Value("account_id", "uuid", c => c.Account.Id);
        var columns = AccountColumns(p, c => c.Account).ToList();
        columns.Add(("created_at", p.Value("created_at", "timestamptz", c => c.Account.CreatedAt)));
        if (table.Kind == AccountKind.Project)
        {
            columns.Add(("\"user\"", p.Nullable("creator_id", "uuid", NpgsqlDbType.Uuid, c => c.Account.CreatorId)));
            columns.Add(("initial_credit_granted", p.Value("initial_credit_granted", "boolean", c => c.Account.InitialCreditGranted)));
        }

        columns.Add(("currency", p.Value("currency", "text", c => c.Account.Currency)));
        var names = string.Join(", ", columns.Select(c => c.Column));
        var values = string.Join(", ", columns.Select(c => c.Value));
        var accountInsert = $"""
            INSERT INTO {table.Accounts} ({table.Key}, {names})
            VALUES ({account}, {values})
            ON CONFLICT DO NOTHING RETURNING 1 AS created
            """;
        var createdAt = columns.First(c => c.Column == "created_at").Value;
        return p.Build(With(
            [("acct", accountInsert), ("hist", HistoryRows(p, table, account, c => c.Rows).Sql(gate: "acct")),
             .. GrantStatements.Parts(p, table, account, createdAt, c => c.Grants, gate: "acct", withChanges: false)],
            "SELECT count(*) AS created FROM acct"));
    }

    private static SqlStatement<ProjectCreation> BuildProjectCreation()
    {
        var table = AccountTable.Projects;
        var p = new SqlParameters<ProjectCreation>();
        var project = p.Value("account_id", "uuid", c => c.Account.Id);
        var creator = p.Value("creator_id", "uuid", c => c.Account.CreatorId!.Value);
        var createdAt = p.Value("created_at", "timestamptz", c => c.Account.CreatedAt);
        var credit = p.Value("credit", "numeric", c => c.CreditRow.BalanceAfter);
        var currency = p.Value("currency", "text", c => c.Account.Currency);
        var claim = $"""
            INSERT INTO first_project_credit (creator, project, claimed_at)
            SELECT {creator}, {project}, {createdAt} WHERE NOT EXISTS (SELECT 1 FROM {table.Accounts} WHERE project = {project})
            ON CONFLICT DO NOTHING
            RETURNING project
            """;
        var decided = $"""
            SELECT EXISTS (SELECT 1 FROM claim)
                OR EXISTS (SELECT 1 FROM first_project_credit WHERE creator = {creator} AND project = {project}) AS granted
            """;
        var accountInsert = $"""
            INSERT INTO {table.Accounts} (project, "user", balance, currency, initial_credit_granted, version, created_at, updated_at)
            SELECT {project}, {creator}, CASE WHEN d.granted THEN {credit} ELSE 0 END, {currency}, d.granted,
                   CASE WHEN d.granted THEN 1 ELSE 0 END, {createdAt}, {createdAt}
            FROM decided d
            ON CONFLICT DO NOTHING
            RETURNING initial_credit_granted AS granted
            """;
        var history = HistoryRows(p, table, project, c => c.Rows).Sql(gate: "acct", condition: "acct.granted");
        return p.Build(With(
            [("claim", claim), ("decided", decided), ("acct", accountInsert), ("hist", history),
             .. GrantStatements.Parts(p, table, project, createdAt, c => c.Grants, gate: "acct", condition: "acct.granted", withChanges: false)],
            "SELECT count(*) AS created, COALESCE(bool_or(granted), false) AS first_project FROM acct"));
    }

    /// <summary>The account row's columns that a commit moves; a creation writes them too.</summary>
    private static (string Column, string Value)[] AccountColumns<TInput>(SqlParameters<TInput> p, Func<TInput, AccountState> account) =>
    [
        ("balance", p.Value("balance", "numeric", c => account(c).Balance)),
        ("is_pro", p.Value("is_pro", "boolean", c => account(c).IsPro)),
        ("monthly_quota", p.Value("monthly_quota", "numeric", c => account(c).MonthlyQuota)),
        ("month_used", p.Value("month_used", "numeric", c => account(c).MonthUsed)),
        ("cycle_start", p.Nullable("cycle_start", "timestamptz", NpgsqlDbType.TimestampTz, c => account(c).CycleStart)),
        ("cycle_end", p.Nullable("cycle_end", "timestamptz", NpgsqlDbType.TimestampTz, c => account(c).CycleEnd)),
        ("cycle_anchor", p.Nullable("cycle_anchor", "timestamptz", NpgsqlDbType.TimestampTz, c => account(c).CycleAnchor)),
        ("version", p.Value("version", "bigint", c => account(c).Version)),
        ("holds_seq", p.Value("holds_seq", "bigint", c => account(c).HoldsVersion)),
        ("updated_at", p.Value("updated_at", "timestamptz", c => account(c).UpdatedAt)),
    ];

    /// <summary>History rows, one array per column.</summary>
    private static ArrayInsert<TInput, LedgerRow> HistoryRows<TInput>(
        SqlParameters<TInput> p, AccountTable table, string account, Func<TInput, IReadOnlyList<LedgerRow>> rows) =>
        new ArrayInsert<TInput, LedgerRow>(p, table.History, "history", rows)
            .Shared(table.Key, account)
            .Column("uid", "uuid", r => r.Id)
            .Column("seq", "bigint", r => r.Sequence)
            .Column("amount", "numeric", r => r.Amount)
            .Column("quota_used", "numeric", r => r.QuotaUsed)
            .Column("currency", "text", r => r.Currency)
            .Column("reason", "text", r => r.Reason)
            .Column("balance_after", "numeric", r => r.BalanceAfter)
            .Column("month_used_after", "numeric", r => r.MonthUsedAfter)
            .Column("usage_id", "uuid", r => r.UsageId)
            .Column(table.Counterparty, "uuid", r => r.CounterpartyId)
            .Column("model_id", "uuid", r => r.ModelId)
            .Column("input_tokens", "bigint", r => r.InputTokens)
            .Column("output_tokens", "bigint", r => r.OutputTokens)
            .Column("credit_id", "uuid", r => r.CreditId)
            .Column("extra", "text", r => r.Extra, cast: "jsonb")
            .Column("hold_id", "uuid", r => r.HoldId)
            .Column("created_at", "timestamptz", r => r.CreatedAt.UtcDateTime);

    /// <summary>One statement: each part a CTE (later parts may read earlier ones, e.g. the account update's row), then the result.</summary>
    private static string With((string Name, string Sql)[] parts, string result)
    {
        var commonTableExpressions = string.Join(",\n", parts.Select(part => part.Name + " AS (\n" + part.Sql + ")"));
        return $"""
            WITH {commonTableExpressions}
            {result}
            """;
    }
}
