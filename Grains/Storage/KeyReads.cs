using Npgsql;

namespace Billing.Storage;

/// <summary>
/// Reads rows by a handful of primary keys in one round trip: one <c>key = $1</c> statement per key in a batch,
/// not one <c>key = ANY($1)</c>. PostgreSQL keeps the plan of a prepared statement; for <c>= ANY</c> (or a join to
/// <c>unnest</c>) on a table that was small when the plan was made (a new database), that plan scans the whole table,
/// and keeps scanning it as the table grows. An equality on the key is an index lookup in any plan.
/// </summary>
internal static class KeyReads
{
    /// <summary>The rows <paramref name="byKeySql"/> (one <c>uuid</c> parameter, <c>$1</c>) finds for each distinct key.</summary>
    public static async Task<List<T>> ReadByKeysAsync<T>(
        NpgsqlDataSource dataSource, string byKeySql, IEnumerable<Guid> keys, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
    {
        var found = new List<T>();
        var distinct = keys.Distinct().ToArray();
        if (distinct.Length == 0) return found;
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        foreach (var key in distinct)
        {
            var command = new NpgsqlBatchCommand(byKeySql);
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = key });
            batch.BatchCommands.Add(command);
        }

        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        do
        {
            while (await reader.ReadAsync(cancellationToken)) found.Add(read(reader));
        }
        while (await reader.NextResultAsync(cancellationToken));

        return found;
    }
}
