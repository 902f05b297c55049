using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Billing.Storage;

/// <summary>
/// A schema file that builds one index with <c>CREATE INDEX CONCURRENTLY IF NOT EXISTS</c>: on a large table a plain
/// build blocks every insert into it until it ends (a ledger table: every charge), a concurrent one does not.
/// PostgreSQL runs such a build only outside a transaction, so the file is applied outside one and recorded after it:
/// <list type="bullet">
/// <item>A crash after the build and before the record runs the file again, which <c>IF NOT EXISTS</c> makes a no-op.</item>
/// <item>A build that failed or was interrupted leaves the index behind marked invalid (it is not used, but every
/// write still maintains it, and <c>IF NOT EXISTS</c> would keep it): it is dropped, concurrently, and built again.</item>
/// <item>The index is checked valid before the file is recorded.</item>
/// </list>
/// Such a file holds that one statement and nothing else (comments aside); anything more is refused before it runs.
/// </summary>
internal sealed partial class ConcurrentIndexBuild
{
    private ConcurrentIndexBuild(string file, string index, string statement) => (File, Index, Statement) = (file, index, statement);

    public string File { get; }

    public string Index { get; }

    public string Statement { get; }

    /// <summary>The build a file holds; null when the file does not build an index concurrently (it runs in a transaction).</summary>
    public static ConcurrentIndexBuild? Of(string file, string sql)
    {
        var code = string.Join('\n', sql.Split('\n').Select(line => line.Trim()).Where(line => line.Length > 0 && !line.StartsWith("--", StringComparison.Ordinal)));
        if (!code.Contains("CONCURRENTLY", StringComparison.OrdinalIgnoreCase)) return null;
        var match = OneConcurrentIndex().Match(code);
        if (!match.Success)
            throw new InvalidOperationException($"Schema file {file} uses CONCURRENTLY: it must hold one statement, CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS name ON …; and nothing else.");
        return new ConcurrentIndexBuild(file, match.Groups["index"].Value.ToLowerInvariant(), code);
    }

    public async Task ApplyAsync(NpgsqlConnection connection, ILogger logger, CancellationToken cancellationToken)
    {
        if (await IsValidAsync(connection, cancellationToken) == false)
        {
            logger.LogWarning("Index {IndexName} of schema file {SchemaFile} is invalid (an earlier build failed or was interrupted); dropping it to build it again", Index, File);
            await SchemaMigrator.ExecuteAsync(connection, $"DROP INDEX CONCURRENTLY IF EXISTS {Index}", cancellationToken);
        }

        // A build waits for the transactions already writing the table, then reads it whole twice: on a large table
        // that is minutes, during which writes go on.
        logger.LogInformation("Building index {IndexName} of schema file {SchemaFile} concurrently: writes to its table go on meanwhile", Index, File);
        var started = TimeProvider.System.GetTimestamp();
        await SchemaMigrator.ExecuteAsync(connection, Statement, cancellationToken);
        if (await IsValidAsync(connection, cancellationToken) != true)
            throw new InvalidOperationException($"Schema file {File}: index {Index} is missing or invalid after its build.");
        logger.LogInformation("Index {IndexName} built in {ElapsedSeconds:F1} s", Index, TimeProvider.System.GetElapsedTime(started).TotalSeconds);
    }

    /// <summary>Whether the index is valid; null when there is none of that name in the current schema.</summary>
    private async Task<bool?> IsValidAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            SELECT i.indisvalid
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            WHERE c.relname = @index AND c.relnamespace = current_schema()::regnamespace
            """, connection);
        command.Parameters.AddWithValue("index", Index);
        return await command.ExecuteScalarAsync(cancellationToken) as bool?;
    }

    // One statement: the index's name is an identifier of ours (letters, digits, underscores), so it may be put into the DROP.
    [GeneratedRegex(@"^CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+(?<index>[a-z_][a-z0-9_]*)\s+ON\s+[^;]+;?$", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex OneConcurrentIndex();
}
