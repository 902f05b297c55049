using Billing.Accounts;
using Npgsql;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary>
/// The account and history tables. Every write is one statement — one round trip, one implicit transaction —
/// guarded by the account's version instead of a row lock: when another activation wrote first, the statement
/// changes nothing and reports it, and the grain reloads.
/// </summary>
public sealed class LedgerStore(NpgsqlDataSource dataSource) : IAsyncDisposable
{
    private readonly VersionReader versions = new(dataSource);

    /// <summary>The accounts' grants (issue 12), on the same data source.</summary>
    public GrantStore Grants { get; } = new(dataSource);

    public ValueTask DisposeAsync() => versions.DisposeAsync();

    public async Task<AccountState?> LoadAsync(AccountTable table, Guid id, CancellationToken cancellationToken = default)
    {
        var creator = table.Kind == AccountKind.Project ? "\"user\"" : "NULL::uuid";
        var credit = table.Kind == AccountKind.Project ? "initial_credit_granted" : "true";
        await using var command = dataSource.CreateCommand($"""
            SELECT *, {creator} AS creator_id, {credit} AS initial_credit
            FROM {table.Accounts} WHERE {table.Key} = $1
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        AccountState account;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            if (!await reader.ReadAsync(cancellationToken)) return null;
            account = Read(reader, table, id);
        }

        return account with { Grants = new GrantSet(await Grants.ReadOpenAsync(table, id, cancellationToken)) };
    }

    private static AccountState Read(NpgsqlDataReader reader, AccountTable table, Guid id) =>
        new AccountState(
            id, table.Kind,
            reader.Get<Guid?>("creator_id"),
            reader.Get<decimal>("balance"),
            reader.Get<string>("currency"),
            reader.Get<bool>("initial_credit"),
            reader.Get<bool>("is_pro"),
            reader.Get<decimal>("monthly_quota"),
            reader.Get<decimal>("month_used"),
            reader.Get<DateTimeOffset?>("cycle_start"),
            reader.Get<DateTimeOffset?>("cycle_end"),
            reader.Get<long>("version"),
            reader.Get<DateTimeOffset>("created_at"),
            reader.Get<DateTimeOffset>("updated_at"))
        {
            CycleAnchor = reader.Get<DateTimeOffset?>("cycle_anchor"),
            UsageHour = reader.Get<DateTimeOffset?>("usage_hour") is { } hour
                ? new UsageHourTotal(hour, reader.Get<Guid>("usage_hour_model_id"), reader.Get<string>("usage_hour_currency"),
                    reader.Get<long>("usage_hour_requests"), reader.Get<decimal>("usage_hour_input_tokens"),
                    reader.Get<decimal>("usage_hour_output_tokens"), reader.Get<decimal>("usage_hour_cost"))
                : null,
        };

    /// <summary>The account's version and holds version in the database (<see cref="StoredVersion.Missing"/> when there is no account).</summary>
    /// <remarks>Read together with the other accounts' reads of the moment (<see cref="VersionReader"/>).</remarks>
    public Task<StoredVersion> ReadVersionAsync(AccountTable table, Guid id) => versions.ReadAsync(table, id);

    /// <summary>Creates an account with its opening row (if any) in one statement; false when it already existed.</summary>
    public async Task<bool> CreateAsync(AccountState account, LedgerRow? openingRow, CancellationToken cancellationToken = default)
    {
        await using var command = LedgerStatements.Create(account.Kind).Command(dataSource, new AccountCreation(account, openingRow).ToGroup());
        return (long)(await command.ExecuteScalarAsync(cancellationToken))! == 1;
    }

    /// <summary>
    /// Creates a project account and, if its creator has none yet, claims the creator's one first-project credit
    /// for it, in one statement (<see cref="LedgerStatements.CreateProject"/>): the claim, the account and its opening
    /// <paramref name="creditRow"/> commit together or not at all, so a creation that fails or is abandoned claims
    /// nothing. <paramref name="account"/> is the account without the credit.
    /// </summary>
    public async Task<(bool Created, bool FirstProject)> CreateProjectAsync(AccountState account, LedgerRow creditRow, CancellationToken cancellationToken = default)
    {
        await using var command = LedgerStatements.CreateProject.Command(dataSource, new ProjectCreation(account, creditRow).ToGroup());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.Get<long>("created") == 1, reader.Get<bool>("first_project"));
    }

    /// <summary>
    /// Writes <paramref name="commit"/> all or nothing, only if the account is still at its expected version. False on a
    /// version conflict. A usage id or credit id stored before raises a unique violation (23505) and writes nothing.
    /// </summary>
    public async Task<bool> CommitAsync(LedgerCommit commit, CancellationToken cancellationToken = default)
    {
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(CommitCommand(new LedgerCommitGroup([commit])));
        return await batch.ExecuteScalarAsync(cancellationToken) is Guid;
    }

    /// <summary>
    /// The statement that writes a group of commits, to run alone or beside others in one transaction
    /// (<see cref="LedgerWriter"/>). It returns one row (<c>account_id</c>) per account written; an account without a
    /// row was not at its expected version.
    /// </summary>
    public static NpgsqlBatchCommand CommitCommand(LedgerCommitGroup group) => LedgerStatements.Commit(group).BatchCommand(group);

    /// <summary>Which of <paramref name="usageIds"/> already have a row in this account's history.</summary>
    public Task<HashSet<Guid>> ExistingUsageIdsAsync(AccountTable table, Guid id, Guid[] usageIds, CancellationToken cancellationToken = default) =>
        ExistingAsync(table, id, "usage_id", usageIds, cancellationToken);

    /// <summary>
    /// The reason of the history row each of <paramref name="creditIds"/> already names in this account: a top-up's
    /// (its credit id) or a grant's <c>grant_credit</c> (its grant id). Ids without a row are absent.
    /// </summary>
    public async Task<Dictionary<Guid, string>> CreditIdReasonsAsync(AccountTable table, Guid id, Guid[] creditIds, CancellationToken cancellationToken = default)
    {
        var found = new Dictionary<Guid, string>();
        if (creditIds.Length == 0) return found;
        await using var command = dataSource.CreateCommand(
            $"SELECT credit_id, reason FROM {table.History} WHERE {table.Key} = $1 AND credit_id = ANY($2)");
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = creditIds });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) found[reader.GetGuid(0)] = reader.GetString(1);
        return found;
    }

    public async Task<HistoryPage> ReadHistoryAsync(AccountTable table, Guid id, HistoryQuery query, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT h.*, h.{table.Counterparty} AS counterparty, h.extra::text AS details,
                   COALESCE(d.grant_ids, CASE WHEN h.grant_id IS NOT NULL THEN ARRAY[h.grant_id] END) AS grant_ids,
                   COALESCE(d.grant_amounts, CASE WHEN h.grant_id IS NOT NULL THEN ARRAY[h.amount] END) AS grant_amounts
            FROM {table.History} h
            LEFT JOIN LATERAL (
                -- A row that moved one grant names it itself (grant_id); one that moved more has entries.
                SELECT array_agg(e.grant_id ORDER BY e.ord) AS grant_ids, array_agg(e.amount ORDER BY e.ord) AS grant_amounts
                FROM credit_grant_entry e WHERE e.scope = $4 AND e.account_id = $1 AND e.seq = h.seq) d ON true
            WHERE h.{table.Key} = $1 AND ($2::bigint IS NULL OR h.seq < $2)
            ORDER BY h.seq DESC
            LIMIT $3
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.Before ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = query.Limit + 1 });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Scope });
        var items = new List<HistoryEntry>(query.Limit + 1);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var counterparty = reader.Get<Guid?>("counterparty");
                items.Add(new HistoryEntry(
                    reader.Get<Guid>("uid"), reader.Get<long>("seq"), reader.Get<decimal>("amount"), reader.Get<decimal>("quota_used"),
                    reader.Get<string>("currency"), reader.Get<string>("reason"), reader.Get<decimal>("balance_after"),
                    reader.Get<decimal>("month_used_after"), reader.Get<Guid?>("usage_id"),
                    UserId: table.Kind == AccountKind.Project ? counterparty : id,
                    ProjectId: table.Kind == AccountKind.Project ? id : counterparty,
                    reader.Get<Guid?>("model_id"), reader.Get<long?>("input_tokens"), reader.Get<long?>("output_tokens"),
                    reader.Get<Guid?>("credit_id"), reader.Get<string?>("details"), reader.Get<DateTimeOffset>("created_at"),
                    HoldId: reader.Get<Guid?>("hold_id"),
                    Grants: Draws(reader.Get<Guid[]?>("grant_ids"), reader.Get<decimal[]?>("grant_amounts"))));
            }
        }

        var page = items.Take(query.Limit).ToArray();
        return new HistoryPage(page, items.Count > query.Limit ? page[^1].Sequence : null);
    }

    /// <summary>What a history row moved on each grant (null when it touched none).</summary>
    private static GrantDraw[]? Draws(Guid[]? ids, decimal[]? amounts) =>
        ids is null || amounts is null ? null : ids.Zip(amounts, (id, amount) => new GrantDraw(id, amount)).ToArray();

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

}
