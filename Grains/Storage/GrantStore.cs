using Billing.Accounts;
using Npgsql;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary>Reads of <c>credit_grant</c>; its writes are parts of the ledger's one statement (<see cref="GrantStatements"/>).</summary>
public sealed class GrantStore(NpgsqlDataSource dataSource)
{
    private const string Columns = "grant_id, seq, scope, account_id, category, priority, amount, remaining, currency, effective_at, expires_at, state, description, credit_id, created_at";

    /// <summary>An account's open grants (scheduled, or active with something left), as its grain keeps them.</summary>
    public async Task<IReadOnlyList<CreditGrant>> ReadOpenAsync(AccountTable table, Guid accountId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT {Columns} FROM credit_grant
            WHERE scope = $1 AND account_id = $2 AND state IN ('scheduled', 'active')
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Scope });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = accountId });
        return (await ReadAsync(command, cancellationToken)).Select(g => g.Grant).ToArray();
    }

    /// <summary>One grant with the account that holds it, or null.</summary>
    public async Task<(CreditGrant Grant, AccountKind Kind, Guid AccountId)?> FindAsync(Guid grantId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"SELECT {Columns} FROM credit_grant WHERE grant_id = $1");
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = grantId });
        var found = await ReadAsync(command, cancellationToken);
        return found.Count == 0 ? null : (found[0].Grant, found[0].Kind, found[0].AccountId);
    }

    /// <summary>An account's grants, newest first, of one status when given.</summary>
    public async Task<GrantPage> ListAsync(AccountTable table, Guid accountId, GrantQuery query, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT {Columns} FROM credit_grant
            WHERE scope = $1 AND account_id = $2 AND ($3::text IS NULL OR state = $3) AND ($4::bigint IS NULL OR seq < $4)
            ORDER BY seq DESC
            LIMIT $5
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Scope });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = accountId });
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = query.Status is { } s ? GrantStatements.StateOf(s) : DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = (object?)query.Before ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = query.Limit + 1 });
        var found = await ReadAsync(command, cancellationToken);
        var page = found.Take(query.Limit).ToArray();
        return new GrantPage(page.Select(g => g.Grant.ToView(g.AccountId, g.Kind)).ToArray(), found.Count > query.Limit ? page[^1].Seq : null);
    }

    /// <summary>Accounts with a grant that time has made due at <paramref name="now"/> (to come into effect or to expire).</summary>
    public async Task<IReadOnlyList<(AccountKind Kind, Guid AccountId)>> DueAccountsAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT DISTINCT scope, account_id FROM (
                SELECT scope, account_id FROM credit_grant WHERE state = 'scheduled' AND effective_at <= $1
                UNION ALL
                SELECT scope, account_id FROM credit_grant WHERE state = 'active' AND expires_at IS NOT NULL AND expires_at <= $1) due
            LIMIT $2
            """);
        command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = now.UtcDateTime });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        var due = new List<(AccountKind, Guid)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            due.Add((reader.GetString(0) == BillingScopes.Project ? AccountKind.Project : AccountKind.User, reader.GetGuid(1)));
        return due;
    }

    private static async Task<List<(CreditGrant Grant, long Seq, AccountKind Kind, Guid AccountId)>> ReadAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var grants = new List<(CreditGrant, long, AccountKind, Guid)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var grant = new CreditGrant(
                reader.Get<Guid>("grant_id"),
                GrantStatements.CategoryOf(reader.Get<string>("category")),
                reader.Get<int>("priority"),
                reader.Get<decimal>("amount"),
                reader.Get<decimal>("remaining"),
                reader.Get<string>("currency"),
                reader.Get<DateTimeOffset>("effective_at"),
                reader.Get<DateTimeOffset?>("expires_at"),
                GrantStatements.StatusOf(reader.Get<string>("state")),
                reader.Get<string?>("description"),
                reader.Get<Guid?>("credit_id"),
                reader.Get<DateTimeOffset>("created_at"));
            var kind = reader.Get<string>("scope") == BillingScopes.Project ? AccountKind.Project : AccountKind.User;
            grants.Add((grant, reader.Get<long>("seq"), kind, reader.Get<Guid>("account_id")));
        }

        return grants;
    }
}
