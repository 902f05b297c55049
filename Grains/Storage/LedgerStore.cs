using Billing.Accounts;
using Npgsql;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary>
/// The account and history tables. Every write is one statement — one round trip, one implicit transaction —
/// guarded by the account's version instead of a row lock: when another activation wrote first, the statement
/// changes nothing and reports it, and the grain reloads.
/// </summary>
public sealed class LedgerStore(NpgsqlDataSource dataSource)
{
    private const string HistoryColumns =
        "uid, seq, amount, quota_used, currency, reason, balance_after, month_used_after, usage_id, {0}, model_id, input_tokens, output_tokens, credit_id, extra, created_at";

    public async Task<AccountState?> LoadAsync(AccountTable table, Guid id, CancellationToken cancellationToken = default)
    {
        var creator = table.Kind == AccountKind.Project ? "\"user\"" : "NULL::uuid";
        var credit = table.Kind == AccountKind.Project ? "initial_credit_granted" : "true";
        await using var command = dataSource.CreateCommand($"""
            SELECT balance, currency, is_pro, monthly_quota, month_used, cycle_start, cycle_end, version,
                   created_at, updated_at, {creator}, {credit}, cycle_anchor
            FROM {table.Accounts} WHERE {table.Key} = $1
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return null;
        return new AccountState(
            id, table.Kind,
            reader.IsDBNull(10) ? null : reader.GetGuid(10),
            reader.GetDecimal(0), reader.GetString(1), reader.GetBoolean(11), reader.GetBoolean(2),
            reader.GetDecimal(3), reader.GetDecimal(4),
            reader.IsDBNull(5) ? null : reader.GetFieldValue<DateTimeOffset>(5),
            reader.IsDBNull(6) ? null : reader.GetFieldValue<DateTimeOffset>(6),
            reader.GetInt64(7), reader.GetFieldValue<DateTimeOffset>(8), reader.GetFieldValue<DateTimeOffset>(9))
        {
            CycleAnchor = reader.IsDBNull(12) ? null : reader.GetFieldValue<DateTimeOffset>(12),
        };
    }

    /// <summary>The account's version in the database (-1 when there is no account).</summary>
    public async Task<long> ReadVersionAsync(AccountTable table, Guid id, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"SELECT version FROM {table.Accounts} WHERE {table.Key} = $1");
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        return await command.ExecuteScalarAsync(cancellationToken) is long version ? version : -1;
    }

    /// <summary>Creates an account with its opening row (if any) in one statement; false when it already existed.</summary>
    public async Task<bool> CreateAsync(AccountState account, LedgerRow? openingRow, CancellationToken cancellationToken = default)
    {
        var table = AccountTable.For(account.Kind);
        var (extraColumns, extraValues) = account.Kind == AccountKind.Project
            ? (", \"user\", initial_credit_granted", ", $6, $7")
            : ("", "");
        var insertAccount = $"""
            INSERT INTO {table.Accounts} ({table.Key}, balance, currency, version, created_at, updated_at{extraColumns})
            VALUES ($1, $2, $3, $4, $5, $5{extraValues}) ON CONFLICT DO NOTHING RETURNING 1 AS created
            """;
        var sql = openingRow is null
            ? $"WITH acct AS ({insertAccount}) SELECT count(*) FROM acct"
            : $"""
              WITH acct AS ({insertAccount}),
              hist AS ({InsertHistory(table, "$1", "$8", fromAcct: true)})
              SELECT count(*) FROM acct
              """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = account.Id });
        command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = account.Balance });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = account.Currency });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = account.Version });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = account.CreatedAt });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)account.CreatorId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = account.InitialCreditGranted });
        AddHistoryArrays(command.Parameters, openingRow is null ? [] : [openingRow]);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))! == 1;
    }

    /// <summary>
    /// Creates a project account and, if its creator has none yet, claims the creator's one first-project credit
    /// for it, in one statement: the claim row (<c>first_project_credit</c>), the account (balance and
    /// initial_credit_granted follow the claim) and its opening <paramref name="creditRow"/> commit together or not
    /// at all, so a creation that fails or is abandoned claims nothing. <paramref name="account"/> is the account
    /// without the credit. Returns whether the account was created and whether it took the credit.
    /// </summary>
    public async Task<(bool Created, bool FirstProject)> CreateProjectAsync(AccountState account, LedgerRow creditRow, CancellationToken cancellationToken = default)
    {
        var table = AccountTable.Projects;
        // The claim is skipped for a project that already exists (the account insert below will do nothing); a
        // concurrent creation of the same project for another creator is caught by the claim's foreign key, which
        // fails this statement. ON CONFLICT DO NOTHING: the creator's credit is taken (now or by a statement that
        // committed while this one waited on the creator's key), or the project already holds a claim.
        var sql = $"""
            WITH claim AS (
                INSERT INTO first_project_credit (creator, project, claimed_at)
                SELECT $5, $1, $4 WHERE NOT EXISTS (SELECT 1 FROM {table.Accounts} WHERE project = $1)
                ON CONFLICT DO NOTHING
                RETURNING project),
            decided AS (
                SELECT EXISTS (SELECT 1 FROM claim)
                    OR EXISTS (SELECT 1 FROM first_project_credit WHERE creator = $5 AND project = $1) AS granted),
            acct AS (
                INSERT INTO {table.Accounts} (project, "user", balance, currency, initial_credit_granted, version, created_at, updated_at)
                SELECT $1, $5, CASE WHEN d.granted THEN $2 ELSE 0 END, $3, d.granted, CASE WHEN d.granted THEN 1 ELSE 0 END, $4, $4
                FROM decided d
                ON CONFLICT DO NOTHING
                RETURNING initial_credit_granted AS granted),
            hist AS ({InsertHistory(table, "$1", "$6", fromAcct: true)}
                WHERE acct.granted)
            SELECT count(*), COALESCE(bool_or(granted), false) FROM acct
            """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = account.Id });
        command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = creditRow.BalanceAfter });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = account.Currency });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = account.CreatedAt });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = account.CreatorId!.Value });
        AddHistoryArrays(command.Parameters, [creditRow]);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetInt64(0) == 1, reader.GetBoolean(1));
    }

    /// <summary>
    /// Appends <paramref name="rows"/>, inserts their usage records and moves the account to <paramref name="after"/>,
    /// all or nothing, only if the account is still at <paramref name="expectedVersion"/>. False on a version conflict.
    /// A usage id or credit id stored before raises a unique violation (23505) and writes nothing.
    /// </summary>
    public async Task<bool> CommitAsync(
        AccountState after, long expectedVersion, IReadOnlyList<LedgerRow> rows, IReadOnlyList<UsageReceipt> charges,
        bool resolveInsufficientBalanceErrors, CancellationToken cancellationToken = default)
    {
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(CommitCommand(after, expectedVersion, rows, charges, resolveInsufficientBalanceErrors));
        return (long)(await batch.ExecuteScalarAsync(cancellationToken))! == 1;
    }

    private static readonly string[] CommitSql = [BuildCommitSql(AccountTable.Users), BuildCommitSql(AccountTable.Projects)];

    private static string BuildCommitSql(AccountTable table) => $"""
            WITH acct AS (
                UPDATE {table.Accounts}
                SET balance = $2, is_pro = $3, monthly_quota = $4, month_used = $5, cycle_start = $6, cycle_end = $7,
                    cycle_anchor = $37, version = $8, updated_at = $9
                WHERE {table.Key} = $1 AND version = $10
                RETURNING 1 AS ok),
            hist AS ({InsertHistory(table, "$1", "$11", fromAcct: true)}),
            usage AS (
                INSERT INTO usage_record (usage_id, outcome, paid_by, account_id, cost, currency, input_tokens, output_tokens,
                                          balance_after, quota_used, created_at)
                SELECT u.usage_id, 'charged', $28, $1, u.cost, u.currency, u.input_tokens, u.output_tokens, u.balance_after, u.quota_used, $9
                FROM acct, unnest($27::uuid[], $29::numeric[], $30::text[], $31::bigint[], $32::bigint[], $33::numeric[], $34::numeric[])
                     AS u(usage_id, cost, currency, input_tokens, output_tokens, balance_after, quota_used)),
            resolved AS (
                UPDATE billing_error SET resolved = true, resolved_at = $9
                FROM acct
                WHERE $35 AND scope = $36 AND scope_id = $1 AND error_type = 'insufficient_balance' AND NOT resolved)
            SELECT count(*) FROM acct
            """;

    /// <summary>
    /// The statement of <see cref="CommitAsync"/>, to run alone or beside other accounts' in one transaction
    /// (<see cref="LedgerWriter"/>). It returns one row: 1 when written, 0 on a version conflict.
    /// </summary>
    public static NpgsqlBatchCommand CommitCommand(
        AccountState after, long expectedVersion, IReadOnlyList<LedgerRow> rows, IReadOnlyList<UsageReceipt> charges,
        bool resolveInsufficientBalanceErrors)
    {
        var table = AccountTable.For(after.Kind);
        var command = new NpgsqlBatchCommand(CommitSql[(int)after.Kind]);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<Guid> { TypedValue = after.Id });
        p.Add(new NpgsqlParameter<decimal> { TypedValue = after.Balance });
        p.Add(new NpgsqlParameter<bool> { TypedValue = after.IsPro });
        p.Add(new NpgsqlParameter<decimal> { TypedValue = after.MonthlyQuota });
        p.Add(new NpgsqlParameter<decimal> { TypedValue = after.MonthUsed });
        p.Add(new NpgsqlParameter { Value = (object?)after.CycleStart ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        p.Add(new NpgsqlParameter { Value = (object?)after.CycleEnd ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        p.Add(new NpgsqlParameter<long> { TypedValue = after.Version });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = after.UpdatedAt });
        p.Add(new NpgsqlParameter<long> { TypedValue = expectedVersion });
        AddHistoryArrays(p, rows); // $11 … $26
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = charges.Select(c => c.UsageId).ToArray() });
        p.Add(new NpgsqlParameter<string> { TypedValue = after.Kind == AccountKind.Project ? "project" : "user" });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = charges.Select(c => c.Cost).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = charges.Select(c => c.Currency).ToArray() });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = charges.Select(c => c.InputTokens).ToArray() });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = charges.Select(c => c.OutputTokens).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = charges.Select(c => c.BalanceAfter).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = charges.Select(c => c.QuotaUsed).ToArray() });
        p.Add(new NpgsqlParameter<bool> { TypedValue = resolveInsufficientBalanceErrors });
        p.Add(new NpgsqlParameter<string> { TypedValue = table.Scope });
        p.Add(new NpgsqlParameter { Value = (object?)after.CycleAnchor ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    /// <summary>Which of <paramref name="usageIds"/> already have a row in this account's history.</summary>
    public Task<HashSet<Guid>> ExistingUsageIdsAsync(AccountTable table, Guid id, Guid[] usageIds, CancellationToken cancellationToken = default) =>
        ExistingAsync(table, id, "usage_id", usageIds, cancellationToken);

    /// <summary>Which of <paramref name="creditIds"/> already have a row in this account's history.</summary>
    public Task<HashSet<Guid>> ExistingCreditIdsAsync(AccountTable table, Guid id, Guid[] creditIds, CancellationToken cancellationToken = default) =>
        ExistingAsync(table, id, "credit_id", creditIds, cancellationToken);

    public async Task<HistoryPage> ReadHistoryAsync(AccountTable table, Guid id, HistoryQuery query, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT uid, seq, amount, quota_used, currency, reason, balance_after, month_used_after, usage_id,
                   "user", project, model_id, input_tokens, output_tokens, credit_id, extra::text, created_at
            FROM {table.History}
            WHERE {table.Key} = $1 AND ($2::bigint IS NULL OR seq < $2)
            ORDER BY seq DESC
            LIMIT $3
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.Before ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = query.Limit + 1 });
        var items = new List<HistoryEntry>(query.Limit + 1);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                items.Add(new HistoryEntry(
                    reader.GetGuid(0), reader.GetInt64(1), reader.GetDecimal(2), reader.GetDecimal(3), reader.GetString(4),
                    reader.GetString(5), reader.GetDecimal(6), reader.GetDecimal(7),
                    NullableGuid(reader, 8), NullableGuid(reader, 9), NullableGuid(reader, 10), NullableGuid(reader, 11),
                    reader.IsDBNull(12) ? null : reader.GetInt64(12), reader.IsDBNull(13) ? null : reader.GetInt64(13),
                    NullableGuid(reader, 14), reader.IsDBNull(15) ? null : reader.GetString(15),
                    reader.GetFieldValue<DateTimeOffset>(16)));
            }
        }

        var page = items.Take(query.Limit).ToArray();
        return new HistoryPage(page, items.Count > query.Limit ? page[^1].Sequence : null);
    }

    private async Task<HashSet<Guid>> ExistingAsync(AccountTable table, Guid id, string column, Guid[] ids, CancellationToken cancellationToken)
    {
        var found = new HashSet<Guid>();
        if (ids.Length == 0) return found;
        await using var command = dataSource.CreateCommand(
            $"SELECT {column} FROM {table.History} WHERE {table.Key} = $1 AND {column} = ANY($2)");
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = ids });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) found.Add(reader.GetGuid(0));
        return found;
    }

    private static string InsertHistory(AccountTable table, string accountParameter, string firstArray, bool fromAcct)
    {
        var n = int.Parse(firstArray[1..]);
        string P(int i, string type) => $"${n + i}::{type}[]";
        return $"""
            INSERT INTO {table.History} ({table.Key}, {string.Format(HistoryColumns, table.Counterparty)})
            SELECT {accountParameter}, r.uid, r.seq, r.amount, r.quota_used, r.currency, r.reason, r.balance_after, r.month_used_after,
                   r.usage_id, r.counterparty, r.model_id, r.input_tokens, r.output_tokens, r.credit_id, r.extra::jsonb, r.created_at
            FROM {(fromAcct ? "acct, " : "")}unnest({P(0, "uuid")}, {P(1, "bigint")}, {P(2, "numeric")}, {P(3, "numeric")}, {P(4, "text")},
                        {P(5, "text")}, {P(6, "numeric")}, {P(7, "numeric")}, {P(8, "uuid")}, {P(9, "uuid")}, {P(10, "uuid")},
                        {P(11, "bigint")}, {P(12, "bigint")}, {P(13, "uuid")}, {P(14, "text")}, {P(15, "timestamptz")})
                 AS r(uid, seq, amount, quota_used, currency, reason, balance_after, month_used_after, usage_id, counterparty,
                      model_id, input_tokens, output_tokens, credit_id, extra, created_at)
            """;
    }

    private static void AddHistoryArrays(NpgsqlParameterCollection p, IReadOnlyList<LedgerRow> rows)
    {
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = rows.Select(r => r.Id).ToArray() });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = rows.Select(r => r.Sequence).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = rows.Select(r => r.Amount).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = rows.Select(r => r.QuotaUsed).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = rows.Select(r => r.Currency).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = rows.Select(r => r.Reason).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = rows.Select(r => r.BalanceAfter).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = rows.Select(r => r.MonthUsedAfter).ToArray() });
        p.Add(new NpgsqlParameter<Guid?[]> { TypedValue = rows.Select(r => r.UsageId).ToArray() });
        p.Add(new NpgsqlParameter<Guid?[]> { TypedValue = rows.Select(r => r.CounterpartyId).ToArray() });
        p.Add(new NpgsqlParameter<Guid?[]> { TypedValue = rows.Select(r => r.ModelId).ToArray() });
        p.Add(new NpgsqlParameter<long?[]> { TypedValue = rows.Select(r => r.InputTokens).ToArray() });
        p.Add(new NpgsqlParameter<long?[]> { TypedValue = rows.Select(r => r.OutputTokens).ToArray() });
        p.Add(new NpgsqlParameter<Guid?[]> { TypedValue = rows.Select(r => r.CreditId).ToArray() });
        p.Add(new NpgsqlParameter<string?[]> { TypedValue = rows.Select(r => r.Extra).ToArray() });
        p.Add(new NpgsqlParameter<DateTime[]> { TypedValue = rows.Select(r => r.CreatedAt.UtcDateTime).ToArray() });
    }

    private static Guid? NullableGuid(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetGuid(ordinal);
}
