using Billing.Accounts;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary>
/// Everything one account commit writes, in one statement: the account row moved to <see cref="After"/> (only if it is
/// still at <see cref="ExpectedVersion"/>), its new history rows, the usage records of its charges, and the open
/// insufficient-balance errors it resolves, and the open usage hours its usage rows closed (<see cref="UsageRollup"/>). A feature that writes another table adds a list here and a part to
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
    GrantWrites? Grants = null,
    IReadOnlyList<UsageHourTotal>? ClosedUsageHours = null,
    DateTimeOffset? ResolveErrorsCreatedBy = null)
{
    /// <summary>
    /// The most open insufficient-balance errors one commit resolves for its account, oldest first: a top-up after a long
    /// dry spell may find many thousands, and one statement resolving them all would hold up every account sharing its
    /// transaction. The account resolves the rest in writes of its own (<see cref="Billing.Accounts.ResolveErrorsOperation"/>).
    /// </summary>
    public const int MaxErrorsResolvedPerWrite = 1_000;

    private GrantWrites? grantWrites;

    /// <summary>The grant rows to write: <see cref="Grants"/>, or when not given, what <see cref="Rows"/> do to grants.</summary>
    public GrantWrites GrantWrites => grantWrites ??= Grants ?? GrantWrites.From(Rows);

    /// <summary>
    /// The commit of <paramref name="rows"/> on <paramref name="before"/> as the group commit builds one, outside it (tools
    /// and tests that write an account directly): the account after the rows, its open usage hour included, and the
    /// open hours they close (<see cref="UsageRollup"/>).
    /// </summary>
    public static LedgerCommit Of(AccountState before, IReadOnlyList<LedgerRow> rows, IReadOnlyList<UsageReceipt> charges, long? expectedVersion = null)
    {
        var batch = new LedgerBatch(before, before.UpdatedAt);
        foreach (var row in rows) batch.Append(row);
        batch.Charges.AddRange(charges);
        return batch.ToCommit() with { ExpectedVersion = expectedVersion ?? before.Version };
    }
}

/// <summary>A new account and its opening history row (if any).</summary>
public sealed record AccountCreation(AccountState Account, LedgerRow? OpeningRow)
{
    /// <summary>The statement's input: the account and its row, with the grant the row creates.</summary>
    public LedgerCommitGroup ToGroup()
    {
        IReadOnlyList<LedgerRow> rows = OpeningRow is null ? [] : [OpeningRow];
        return new LedgerCommitGroup([new LedgerCommit(Account, -1, rows, [], false, Grants: GrantWrites.From(rows))]);
    }
}

/// <summary>A project account created together with its claim of the creator's first-project credit.</summary>
public sealed record ProjectCreation(AccountState Account, LedgerRow CreditRow)
{
    /// <summary>The statement's input: the account and its credit row, with the first-project grant (written only when the claim is granted).</summary>
    public LedgerCommitGroup ToGroup() =>
        new([new LedgerCommit(Account, -1, [CreditRow], [], false, Grants: GrantWrites.From([CreditRow]))]);
}

/// <summary>
/// The commits of several accounts of one kind, written by one statement: each account is moved only if it is still at
/// its expected version, and only the rows of the accounts moved are written. The rows of each part are gathered once
/// per group (<see cref="Rows{TRow}"/>), each with the account it belongs to. At most one commit per account.
/// </summary>
public sealed class LedgerCommitGroup
{
    private readonly Dictionary<string, object> parts = [];

    public LedgerCommitGroup(IReadOnlyList<LedgerCommit> commits)
    {
        if (commits.Count == 0) throw new ArgumentException("A commit group needs at least one commit.", nameof(commits));
        Commits = commits;
        Kind = commits[0].After.Kind;
        var accounts = new Owned<LedgerCommit>[commits.Count];
        for (var i = 0; i < commits.Count; i++)
        {
            if (commits[i].After.Kind != Kind) throw new ArgumentException("A commit group writes accounts of one kind.", nameof(commits));
            accounts[i] = new Owned<LedgerCommit>(commits[i].After.Id, commits[i]);
        }

        Accounts = accounts;
    }

    public IReadOnlyList<LedgerCommit> Commits { get; }

    public AccountKind Kind { get; }

    /// <summary>Each commit, owned by its account: the rows of the account part.</summary>
    public IReadOnlyList<Owned<LedgerCommit>> Accounts { get; }

    /// <summary>The shape that writes every commit of the group: the union of theirs.</summary>
    public LedgerStatements.CommitShape Shape => Commits.Aggregate(LedgerStatements.CommitShape.AccountAndHistory, (shape, c) => shape | LedgerStatements.ShapeOf(c));

    /// <summary>The rows of one part of every commit, in commit order, gathered on first use (a statement reads each column from them).</summary>
    public IReadOnlyList<Owned<TRow>> Rows<TRow>(string part, Func<LedgerCommit, IReadOnlyList<TRow>?> select)
    {
        if (parts.TryGetValue(part, out var gathered)) return (IReadOnlyList<Owned<TRow>>)gathered;
        var rows = new List<Owned<TRow>>();
        foreach (var commit in Commits)
        {
            foreach (var row in select(commit) ?? []) rows.Add(new Owned<TRow>(commit.After.Id, row));
        }

        parts[part] = rows;
        return rows;
    }
}

/// <summary>
/// The ledger's statements, built once per account table from one mapping per table: a new column is one line in
/// <see cref="AccountColumns"/>, <see cref="HistoryRows"/> or the usage-record part; a new table is one more part of
/// <see cref="Commit(AccountKind, CommitShape)"/>. Each is one statement, one round trip, one implicit transaction.
/// <para>
/// The commit statement writes a group of accounts (<see cref="LedgerCommitGroup"/>): its account part moves every
/// account still at its expected version and returns the ids it moved, and every other part joins its rows to those ids.
/// PostgreSQL's cost per statement (starting the plan's nodes, the tables' CHECK expressions, the summary's statement
/// trigger) is then paid once per group instead of once per account, which is most of its work for one usage.
/// </para>
/// </summary>
public static class LedgerStatements
{
    // One commit statement per account table and shape, built when first needed (at most 2 × 32, a handful in use).
    private static readonly SqlStatement<LedgerCommitGroup>?[,] Commits = new SqlStatement<LedgerCommitGroup>?[2, (int)CommitShape.All + 1];
    private static readonly SqlStatement<LedgerCommitGroup>[] Creations = [BuildCreation(AccountTable.Users), BuildCreation(AccountTable.Projects)];

    /// <summary>Where a part of the commit statement reads the commit's time: the account part returns it for each account.</summary>
    private const string CommitNow = "acct.now";

    /// <summary>
    /// A project account and its claim of the creator's one first-project credit, in one statement: the claim row
    /// (skipped when the project already exists; ON CONFLICT DO NOTHING when the creator's credit is taken), the
    /// account (balance, version and initial_credit_granted follow the claim) and its opening credit row. A concurrent
    /// creation of the same project for another creator fails the claim's foreign key, and so the whole statement.
    /// Returns <c>created</c> (1 or 0) and <c>first_project</c>. Its input: <see cref="ProjectCreation.ToGroup"/>.
    /// </summary>
    public static SqlStatement<LedgerCommitGroup> CreateProject { get; } = BuildProjectCreation();

    /// <summary>
    /// The commit statement of a group's kind and shape; it returns one row (<c>account_id</c>) for each account it
    /// wrote: an account missing from the result was not at its expected version, and nothing of its commit was written.
    /// </summary>
    public static SqlStatement<LedgerCommitGroup> Commit(LedgerCommitGroup group) => Commit(group.Kind, group.Shape);

    /// <summary>The commit statement of one account table and shape.</summary>
    public static SqlStatement<LedgerCommitGroup> Commit(AccountKind kind, CommitShape shape) =>
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

        /// <summary>A row that moved two grants or more: <c>credit_grant_entry</c> rows (a row that moved one names it itself).</summary>
        GrantEntries = 16,

        /// <summary>An open usage hour closed into <c>usage_hourly</c> (once per account and hour or change of model).</summary>
        UsageHours = 32,
        All = Charges | ErrorsAndEvents | Holds | Grants | GrantEntries | UsageHours,
    }

    public static CommitShape ShapeOf(LedgerCommit commit)
    {
        var shape = CommitShape.AccountAndHistory;
        if (commit.Charges.Count > 0) shape |= CommitShape.Charges;
        if (commit.ResolveInsufficientBalanceErrors || commit.Events is { Rows.Count: > 0 }) shape |= CommitShape.ErrorsAndEvents;
        if (commit.Holds is { } holds && (holds.Inserted.Count > 0 || holds.Ended.Count > 0 || holds.Shortfalls.Count > 0)) shape |= CommitShape.Holds;
        var grants = commit.GrantWrites;
        if (grants.Created.Count > 0 || grants.Changed.Count > 0) shape |= CommitShape.Grants;
        if (grants.Entries.Count > 0) shape |= CommitShape.Grants | CommitShape.GrantEntries;
        if (commit.ClosedUsageHours is { Count: > 0 }) shape |= CommitShape.UsageHours;
        return shape;
    }

    /// <summary>The creation of one account (<see cref="AccountCreation.ToGroup"/>); <c>created</c> is 1 when created, 0 when it already existed.</summary>
    public static SqlStatement<LedgerCommitGroup> Create(AccountKind kind) => Creations[(int)kind];

    private static SqlStatement<LedgerCommitGroup> BuildCommit(AccountTable table, CommitShape shape)
    {
        var p = new SqlParameters<LedgerCommitGroup>();
        var accounts = new AccountArrays(p)
            .Key("account_id", "uuid", c => c.After.Id)
            .Guard("expected_version", "bigint", "version", c => c.ExpectedVersion)
            .Guard("expected_holds_seq", "bigint", "holds_seq", c => c.Holds?.ExpectedHoldsVersion ?? c.After.HoldsVersion);
        AccountColumns(new ArraySink(accounts));
        accounts.Returned("now", "updated_at");
        if (shape.HasFlag(CommitShape.ErrorsAndEvents))
        {
            // What the resolved-error events of each account say (read by the events part through the resolved errors).
            accounts.Extra("resolve_errors", "boolean", c => c.ResolveInsufficientBalanceErrors)
                .Extra("resolve_created_by", "timestamptz", c => c.ResolveErrorsCreatedBy?.UtcDateTime)
                .Extra("event_available", "numeric", c => (c.Events ?? Billing.Events.LedgerEvents.None).Available)
                .Extra("event_balance", "numeric", c => (c.Events ?? Billing.Events.LedgerEvents.None).Balance)
                .Extra("event_currency", "text", c => (c.Events ?? Billing.Events.LedgerEvents.None).Currency);
        }

        List<(string Name, string Sql)> parts =
            [("acct", accounts.Update(table)), ("hist", HistoryRows(p, table, g => g.Rows("history", c => c.Rows)).Sql(gate: "acct"))];
        if (shape.HasFlag(CommitShape.Charges)) parts.Add(("usage", UsageRecords(p, table)));
        if (shape.HasFlag(CommitShape.ErrorsAndEvents))
        {
            parts.Add(("resolved", ResolveErrors(p, table)));
            parts.AddRange(EventStatements.CommitParts(p));
        }

        if (shape.HasFlag(CommitShape.Holds)) parts.AddRange(HoldStatements.CommitParts(p, table, CommitNow));
        if (shape.HasFlag(CommitShape.Grants))
            parts.AddRange(GrantStatements.Parts(p, table, CommitNow, gate: "acct", withEntries: shape.HasFlag(CommitShape.GrantEntries)));
        if (shape.HasFlag(CommitShape.UsageHours)) parts.Add(("usage_hours", ClosedUsageHours(p, table)));
        return p.Build(With([.. parts], "SELECT account_id FROM acct"));
    }

    /// <summary>The open usage hours the commits closed, added into <c>usage_hourly</c> (one row per account, hour, model and currency).</summary>
    private static string ClosedUsageHours(SqlParameters<LedgerCommitGroup> p, AccountTable table)
    {
        Func<LedgerCommitGroup, IReadOnlyList<Owned<UsageHourTotal>>> rows = g => g.Rows("usage_hours", c => c.ClosedUsageHours);
        var scope = p.Value("usage_hour_scope", "text", _ => table.Scope);
        var owners = p.Array("usage_hour_owner", "uuid", rows, r => r.AccountId);
        var hours = p.Array("usage_hour_hour", "timestamptz", rows, r => r.Row.Hour.UtcDateTime);
        var models = p.Array("usage_hour_model", "uuid", rows, r => r.Row.ModelId);
        var currencies = p.Array("usage_hour_currency", "text", rows, r => r.Row.Currency);
        var requestCounts = p.Array("usage_hour_requests", "bigint", rows, r => r.Row.Requests);
        var inputTokens = p.Array("usage_hour_input", "numeric", rows, r => r.Row.InputTokens);
        var outputTokens = p.Array("usage_hour_output", "numeric", rows, r => r.Row.OutputTokens);
        var costs = p.Array("usage_hour_cost", "numeric", rows, r => r.Row.Cost);
        // Two closed hours of one key in one statement (an account switching models back and forth) are summed first:
        // ON CONFLICT may not touch one row twice.
        return $"""
            INSERT INTO usage_hourly AS u (scope, account, hour, model_id, currency, requests, input_tokens, output_tokens, cost)
            SELECT {scope}, r.owner_id, r.hour, r.model_id, r.currency, sum(r.requests), sum(r.input_tokens), sum(r.output_tokens), sum(r.cost)
            FROM unnest({owners}, {hours}, {models}, {currencies}, {requestCounts}, {inputTokens}, {outputTokens}, {costs})
                 AS r(owner_id, hour, model_id, currency, requests, input_tokens, output_tokens, cost)
                 JOIN acct ON acct.account_id = r.owner_id
            GROUP BY r.owner_id, r.hour, r.model_id, r.currency
            ON CONFLICT (scope, account, hour, model_id, currency) DO UPDATE SET
                requests = u.requests + EXCLUDED.requests, input_tokens = u.input_tokens + EXCLUDED.input_tokens,
                output_tokens = u.output_tokens + EXCLUDED.output_tokens, cost = u.cost + EXCLUDED.cost
            """;
    }

    /// <summary>The usage records of the commits' charges.</summary>
    private static string UsageRecords(SqlParameters<LedgerCommitGroup> p, AccountTable table) =>
        new ArrayInsert<LedgerCommitGroup, UsageReceipt>(p, "usage_record", "usage", g => g.Rows("usage", c => c.Charges))
            .Column("usage_id", "uuid", u => u.UsageId)
            .Shared("outcome", "'charged'")
            .Shared("paid_by", table.Kind == AccountKind.Project ? "'project'" : "'user'")
            .Shared("account_id", ArrayInsert<LedgerCommitGroup, UsageReceipt>.Owner)
            .Column("cost", "numeric", u => u.Cost)
            .Column("currency", "text", u => u.Currency)
            .Column("input_tokens", "bigint", u => u.InputTokens)
            .Column("output_tokens", "bigint", u => u.OutputTokens)
            .Column("balance_after", "numeric", u => u.BalanceAfter)
            .Column("quota_used", "numeric", u => u.QuotaUsed)
            .Shared("created_at", CommitNow)
            .Sql(gate: "acct");

    /// <summary>
    /// The accounts' open insufficient-balance errors, resolved where the commit says so (read by the events part): the
    /// oldest <see cref="LedgerCommit.MaxErrorsResolvedPerWrite"/>, created by <c>resolve_created_by</c> when it is given.
    /// They are found through the index of open errors (migration 0016), not the account's whole error history. The
    /// conditions are repeated on the row updated, because only those are checked again on a row that a concurrent
    /// resolve changed first: such a row is skipped, not resolved (and its event written) twice.
    /// </summary>
    private static string ResolveErrors(SqlParameters<LedgerCommitGroup> p, AccountTable table)
    {
        var scope = p.Value("scope", "text", _ => table.Scope);
        var perWrite = p.Value("errors_resolved_per_write", "integer", _ => LedgerCommit.MaxErrorsResolvedPerWrite);
        return $"""
            UPDATE billing_error e SET resolved = true, resolved_at = acct.now
            FROM acct CROSS JOIN LATERAL (
                SELECT o.id FROM billing_error o
                WHERE acct.resolve_errors AND o.scope = {scope} AND o.scope_id = acct.account_id
                  AND o.error_type = 'insufficient_balance' AND NOT o.resolved
                  AND (acct.resolve_created_by IS NULL OR o.created_at <= acct.resolve_created_by)
                ORDER BY o.seq
                LIMIT {perWrite}) due
            WHERE e.id = due.id AND e.error_type = 'insufficient_balance' AND NOT e.resolved
            RETURNING e.id, e.scope, e.scope_id, e.error_type,
                      acct.now, acct.event_available AS available, acct.event_balance AS balance, acct.event_currency AS currency
            """;
    }

    private static SqlStatement<LedgerCommitGroup> BuildCreation(AccountTable table)
    {
        var p = new SqlParameters<LedgerCommitGroup>();
        var account = p.Value("account_id", "uuid", g => g.Commits[0].After.Id);
        var sink = new ScalarSink(p);
        AccountColumns(sink);
        var columns = sink.Columns;
        var createdAt = p.Value("created_at", "timestamptz", g => g.Commits[0].After.CreatedAt);
        columns.Add(("created_at", createdAt));
        if (table.Kind == AccountKind.Project)
        {
            columns.Add(("\"user\"", p.Nullable("creator_id", "uuid", NpgsqlDbType.Uuid, g => g.Commits[0].After.CreatorId)));
            columns.Add(("initial_credit_granted", p.Value("initial_credit_granted", "boolean", g => g.Commits[0].After.InitialCreditGranted)));
        }

        columns.Add(("currency", p.Value("currency", "text", g => g.Commits[0].After.Currency)));
        var names = string.Join(", ", columns.Select(c => c.Column));
        var values = string.Join(", ", columns.Select(c => c.Value));
        var accountInsert = $"""
            INSERT INTO {table.Accounts} ({table.Key}, {names})
            VALUES ({account}, {values})
            ON CONFLICT DO NOTHING RETURNING {table.Key} AS account_id
            """;
        return p.Build(With(
            [("acct", accountInsert), ("hist", HistoryRows(p, table, g => g.Rows("history", c => c.Rows)).Sql(gate: "acct")),
             .. GrantStatements.Parts(p, table, createdAt, gate: "acct", withChanges: false)],
            "SELECT count(*) AS created FROM acct"));
    }

    private static SqlStatement<LedgerCommitGroup> BuildProjectCreation()
    {
        var table = AccountTable.Projects;
        var p = new SqlParameters<LedgerCommitGroup>();
        var project = p.Value("account_id", "uuid", g => g.Commits[0].After.Id);
        var creator = p.Value("creator_id", "uuid", g => g.Commits[0].After.CreatorId!.Value);
        var createdAt = p.Value("created_at", "timestamptz", g => g.Commits[0].After.CreatedAt);
        var credit = p.Value("credit", "numeric", g => g.Commits[0].Rows[0].BalanceAfter);
        var currency = p.Value("currency", "text", g => g.Commits[0].After.Currency);
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
            RETURNING project AS account_id, initial_credit_granted AS granted
            """;
        var history = HistoryRows(p, table, g => g.Rows("history", c => c.Rows)).Sql(gate: "acct", condition: "acct.granted");
        return p.Build(With(
            [("claim", claim), ("decided", decided), ("acct", accountInsert), ("hist", history),
             .. GrantStatements.Parts(p, table, createdAt, gate: "acct", condition: "acct.granted", withChanges: false)],
            "SELECT count(*) AS created, COALESCE(bool_or(granted), false) AS first_project FROM acct"));
    }

    /// <summary>The account row's columns that a commit moves; a creation writes them too.</summary>
    private static void AccountColumns(IAccountColumnSink sink)
    {
        sink.Add("balance", "numeric", a => a.Balance);
        sink.Add("is_pro", "boolean", a => a.IsPro);
        sink.Add("monthly_quota", "numeric", a => a.MonthlyQuota);
        sink.Add("month_used", "numeric", a => a.MonthUsed);
        sink.Add("cycle_start", "timestamptz", a => a.CycleStart?.UtcDateTime);
        sink.Add("cycle_end", "timestamptz", a => a.CycleEnd?.UtcDateTime);
        sink.Add("cycle_anchor", "timestamptz", a => a.CycleAnchor?.UtcDateTime);
        sink.Add("version", "bigint", a => a.Version);
        sink.Add("holds_seq", "bigint", a => a.HoldsVersion);
        sink.Add("updated_at", "timestamptz", a => a.UpdatedAt.UtcDateTime);
        sink.Add("usage_hour", "timestamptz", a => a.UsageHour?.Hour.UtcDateTime);
        sink.Add("usage_hour_model_id", "uuid", a => a.UsageHour?.ModelId);
        sink.Add("usage_hour_currency", "text", a => a.UsageHour?.Currency);
        sink.Add("usage_hour_requests", "bigint", a => a.UsageHour?.Requests ?? 0);
        sink.Add("usage_hour_input_tokens", "numeric", a => a.UsageHour?.InputTokens ?? 0m);
        sink.Add("usage_hour_output_tokens", "numeric", a => a.UsageHour?.OutputTokens ?? 0m);
        sink.Add("usage_hour_cost", "numeric", a => a.UsageHour?.Cost ?? 0m);
    }

    /// <summary>History rows, one array per column.</summary>
    private static ArrayInsert<LedgerCommitGroup, LedgerRow> HistoryRows(
        SqlParameters<LedgerCommitGroup> p, AccountTable table, Func<LedgerCommitGroup, IReadOnlyList<Owned<LedgerRow>>> rows) =>
        new ArrayInsert<LedgerCommitGroup, LedgerRow>(p, table.History, "history", rows)
            .Shared(table.Key, ArrayInsert<LedgerCommitGroup, LedgerRow>.Owner)
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
            .Column("grant_id", "uuid", r => r.GrantInRow)
            .Column("created_at", "timestamptz", r => r.CreatedAt.UtcDateTime);

    /// <summary>One statement: each part a CTE (later parts may read earlier ones, e.g. the account update's rows), then the result.</summary>
    private static string With((string Name, string Sql)[] parts, string result)
    {
        var commonTableExpressions = string.Join(",\n", parts.Select(part => part.Name + " AS (\n" + part.Sql + ")"));
        return $"""
            WITH {commonTableExpressions}
            {result}
            """;
    }

    /// <summary>Where <see cref="AccountColumns"/> go: one array per column (the commit) or one value (a creation).</summary>
    private interface IAccountColumnSink
    {
        void Add<T>(string column, string type, Func<AccountState, T> value);
    }

    private sealed class ArraySink(AccountArrays accounts) : IAccountColumnSink
    {
        public void Add<T>(string column, string type, Func<AccountState, T> value) => accounts.Set(column, type, c => value(c.After));
    }

    private sealed class ScalarSink(SqlParameters<LedgerCommitGroup> p) : IAccountColumnSink
    {
        public List<(string Column, string Value)> Columns { get; } = [];

        public void Add<T>(string column, string type, Func<AccountState, T> value) =>
            Columns.Add((column, p.Value(column, type, g => value(g.Commits[0].After))));
    }

    /// <summary>
    /// The account part of the commit statement: one array per column over the group's commits,
    /// <c>UPDATE accounts SET … FROM unnest(…) a WHERE key = a.account_id AND version = a.expected_version …</c>,
    /// returning each moved account's id and what later parts read of its commit.
    /// </summary>
    private sealed class AccountArrays(SqlParameters<LedgerCommitGroup> p)
    {
        private readonly List<(string Alias, string Array)> arrays = [];
        private readonly List<(string Column, string Alias)> guards = [];
        private readonly List<string> assignments = [];
        private readonly List<string> returned = ["a.account_id"];

        public AccountArrays Key<T>(string alias, string type, Func<LedgerCommit, T> value) => Array(alias, type, value);

        /// <summary>The row is moved only where its <paramref name="column"/> equals this value.</summary>
        public AccountArrays Guard<T>(string alias, string type, string column, Func<LedgerCommit, T> value)
        {
            guards.Add((column, alias));
            return Array(alias, type, value);
        }

        public AccountArrays Set<T>(string column, string type, Func<LedgerCommit, T> value)
        {
            assignments.Add($"{column} = a.{column}");
            return Array(column, type, value);
        }

        /// <summary>A value of the commit the statement's later parts read from the account part's result (<c>acct.alias</c>).</summary>
        public AccountArrays Extra<T>(string alias, string type, Func<LedgerCommit, T> value)
        {
            returned.Add("a." + alias);
            return Array(alias, type, value);
        }

        /// <summary>An array already declared, returned under another name (e.g. updated_at as the commit's now).</summary>
        public AccountArrays Returned(string alias, string column)
        {
            returned.Add($"a.{column} AS {alias}");
            return this;
        }

        public string Update(AccountTable table)
        {
            var conditions = string.Join(" AND ", [$"t.{table.Key} = a.account_id", .. guards.Select(g => $"t.{g.Column} = a.{g.Alias}")]);
            var setList = string.Join(", ", assignments);
            var arrayPlaceholders = string.Join(", ", arrays.Select(a => a.Array));
            var arrayColumns = string.Join(", ", arrays.Select(a => a.Alias));
            var returnedColumns = string.Join(", ", returned);
            return $"""
                UPDATE {table.Accounts} t SET {setList}
                FROM unnest({arrayPlaceholders}) AS a({arrayColumns})
                WHERE {conditions}
                RETURNING {returnedColumns}
                """;
        }

        private AccountArrays Array<T>(string alias, string type, Func<LedgerCommit, T> value)
        {
            arrays.Add((alias, p.Array("account." + alias, type, g => g.Accounts, o => value(o.Row))));
            return this;
        }
    }
}
