using Npgsql;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary><c>billing_error</c>: refusals kept for the front end, listed per account and resolved by people or top-ups.</summary>
public sealed class BillingErrorStore(NpgsqlDataSource dataSource)
{
    private const string Columns = "id, scope, scope_id, error_type, message, details::text, resolved, created_at, resolved_at, seq";

    public async Task<BillingErrorPage> ListAsync(BillingErrorQuery query, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT {Columns} FROM billing_error
            WHERE scope = $1 AND scope_id = $2 AND ($3::boolean IS NULL OR resolved = $3) AND ($4::bigint IS NULL OR seq < $4)
            ORDER BY seq DESC
            LIMIT $5
            """);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<string> { TypedValue = query.Scope });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = query.ScopeId });
        p.Add(new NpgsqlParameter { Value = (object?)query.Resolved ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Boolean });
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

    /// <summary>Marks the error resolved (idempotent); null when there is no such error.</summary>
    public async Task<BillingErrorView?> ResolveAsync(Guid id, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand($"""
            UPDATE billing_error SET resolved = true, resolved_at = COALESCE(resolved_at, $2)
            WHERE id = $1
            RETURNING {Columns}
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
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
