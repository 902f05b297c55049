using Npgsql;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary><c>billing_error</c>: refusals kept for the front end, listed per account and resolved by people or top-ups.</summary>
public sealed class BillingErrorStore(NpgsqlDataSource dataSource)
{
    private const string Columns = "id, scope, scope_id, error_type, message, details::text, resolved, created_at, resolved_at, seq";

    public async Task<BillingErrorPage> ListAsync(BillingErrorQuery query, CancellationToken cancellationToken = default)
    {
        // Written out rather than a parameter: only a literal NOT resolved lets the open errors come from the index of
        // open errors (migration 0016) instead of a walk through every error the account ever had.
        var condition = query.Resolved switch { null => "true", true => "resolved", false => "NOT resolved" };
        await using var command = dataSource.CreateCommand($"""
            SELECT {Columns} FROM billing_error
            WHERE scope = $1 AND scope_id = $2 AND {condition} AND ($3::bigint IS NULL OR seq < $3)
            ORDER BY seq DESC
            LIMIT $4
            """);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<string> { TypedValue = query.Scope });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = query.ScopeId });
        p.Add(new NpgsqlParameter { Value = (object?)query.Before ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        p.Add(new NpgsqlParameter<int> { TypedValue = query.Limit + 1 });
        var items = new List<(BillingErrorView View, long Seq)>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) items.Add((Read(reader), reader.GetInt64(9)));
        }

        var page = items.Take(query.Limit).ToArray();
        return new BillingErrorPage(page.Select(i => i.View).ToArray(), items.Count > query.Limit ? page[^1].Seq : null);
    }

    /// <summary>The error, or null when there is no such error.</summary>
    public async Task<BillingErrorView?> FindAsync(Guid id, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"SELECT {Columns} FROM billing_error WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    /// <summary>
    /// Marks the error resolved (idempotent); null when there is no such error. The statement that resolves it also
    /// writes <paramref name="resolvedEvent"/> (E1): only the call that changes it from open to resolved does.
    /// </summary>
    public async Task<BillingErrorView?> ResolveAsync(Guid id, DateTimeOffset now, Billing.Events.BillingEventRow? resolvedEvent = null, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"""
            WITH upd AS (
                UPDATE billing_error SET resolved = true, resolved_at = $2
                WHERE id = $1 AND NOT resolved
                RETURNING {Columns}),
            ev AS (
                INSERT INTO billing_event (id, type, scope, scope_id, billing_error_id, data, created_at)
                SELECT $3, $4, upd.scope, upd.scope_id, upd.id, $5::jsonb, $2 FROM upd WHERE $3 IS NOT NULL)
            SELECT * FROM upd
            UNION ALL
            SELECT {Columns} FROM billing_error WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM upd)
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)resolvedEvent?.Id ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)resolvedEvent?.Type ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)resolvedEvent?.Data ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        BillingErrorView? resolved;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            resolved = await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
        }

        // Resolved at the same moment by another call: this statement's snapshot predates it; read it as it is now.
        return resolved is { Resolved: false } ? await FindAsync(id, cancellationToken) : resolved;
    }

    /// <summary>
    /// How many of the account's insufficient-balance errors created by <paramref name="createdBy"/> are still open
    /// (what a top-up then left: <see cref="LedgerCommit.MaxErrorsResolvedPerWrite"/>). Counted in the index of open errors.
    /// </summary>
    public async Task<long> CountOpenInsufficientBalanceAsync(string scope, Guid scopeId, DateTimeOffset createdBy, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT count(*) FROM billing_error
            WHERE scope = $1 AND scope_id = $2 AND error_type = 'insufficient_balance' AND NOT resolved AND created_at <= $3
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = scope });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = scopeId });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = createdBy });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    public async Task PingAsync(CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT 1");
        await command.ExecuteScalarAsync(cancellationToken);
    }

    private static BillingErrorView Read(NpgsqlDataReader reader) => new(
        reader.GetGuid(0), reader.GetString(1), reader.GetGuid(2), reader.GetString(3), reader.GetString(4),
        reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetBoolean(6), reader.GetFieldValue<DateTimeOffset>(7),
        reader.IsDBNull(8) ? null : reader.GetFieldValue<DateTimeOffset>(8));
}
