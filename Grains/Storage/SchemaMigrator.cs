using Microsoft.Extensions.Logging;
using Npgsql;

namespace Billing.Storage;

/// <summary>
/// Applies <c>sql/order.txt</c> in order, each file once per database, recording it in
/// <c>billing_schema_migrations</c>. Safe to run from several processes at once (advisory lock)
/// and on a database that already has everything (it applies nothing). Each file runs in a transaction of its own,
/// except an index built concurrently (<see cref="ConcurrentIndexBuild"/>), which PostgreSQL cannot build in one.
/// </summary>
public static class SchemaMigrator
{
    private const long AdvisoryLockKey = 0x42494c4c494e47; // "BILLING"

    public static IReadOnlyList<string> Files { get; } = ReadOrder();

    public static Task<int> ApplyAsync(string connectionString, ILogger logger, CancellationToken cancellationToken = default) =>
        ApplyAsync(connectionString, logger, Files, cancellationToken);

    /// <summary>Applies <paramref name="files"/> (a prefix of <see cref="Files"/>: migration tests build an older schema first).</summary>
    public static async Task<int> ApplyAsync(string connectionString, ILogger logger, IReadOnlyList<string> files, CancellationToken cancellationToken = default)
    {
        // No command timeout: an index built on a large table, a backfill, or the wait for another process's migration
        // (the advisory lock) may each outlast Npgsql's 30 s, and a cut build would only start again at the next try.
        // Stopping the process (or the token) is how a migration is cancelled.
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { CommandTimeout = 0 }.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await LockAsync(connection, logger, cancellationToken);
        try
        {
            await ExecuteAsync(connection, """
                CREATE TABLE IF NOT EXISTS billing_schema_migrations (
                    name       text        PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """, cancellationToken);
            var applied = new HashSet<string>();
            await using (var read = new NpgsqlCommand("SELECT name FROM billing_schema_migrations", connection))
            await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken)) applied.Add(reader.GetString(0));
            }

            var count = 0;
            foreach (var file in files.Where(f => !applied.Contains(f)))
            {
                logger.LogInformation("Applying schema file {SchemaFile}", file);
                var sql = ReadResource(file);
                if (ConcurrentIndexBuild.Of(file, sql) is { } build)
                {
                    await build.ApplyAsync(connection, logger, cancellationToken);
                    await ExecuteAsync(connection, "INSERT INTO billing_schema_migrations (name) VALUES (@name)", cancellationToken, ("name", file));
                }
                else
                {
                    await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                    await ExecuteAsync(connection, sql, cancellationToken);
                    await ExecuteAsync(connection, "INSERT INTO billing_schema_migrations (name) VALUES (@name)", cancellationToken, ("name", file));
                    await transaction.CommitAsync(cancellationToken);
                }

                count++;
            }

            logger.LogInformation("Schema up to date: {AppliedCount} file(s) applied now, {TotalCount} in all", count, Files.Count);
            return count;
        }
        finally
        {
            await UnlockAsync(connection, logger);
        }
    }

    /// <summary>
    /// Takes the migration lock by trying, not by waiting in <c>pg_advisory_lock</c>: a statement waiting there holds a
    /// snapshot, a concurrent index build of the process holding the lock waits for every older snapshot, and the two
    /// would wait for each other until PostgreSQL aborts one (40P01). Between tries this session holds no snapshot.
    /// </summary>
    private static async Task LockAsync(NpgsqlConnection connection, ILogger logger, CancellationToken cancellationToken)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var logged = false;
        await using var tryLock = new NpgsqlCommand("SELECT pg_try_advisory_lock(@key)", connection);
        tryLock.Parameters.AddWithValue("key", AdvisoryLockKey);
        while (!(bool)(await tryLock.ExecuteScalarAsync(cancellationToken))!)
        {
            if (!logged && waited.Elapsed > TimeSpan.FromSeconds(2))
            {
                logger.LogInformation("Waiting for another process's schema migration to finish");
                logged = true;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }
    }

    /// <summary>
    /// Releases the lock; a session that died with the migration's fault has lost it already, and that fault, not this
    /// one, is what the caller must see.
    /// </summary>
    private static async Task UnlockAsync(NpgsqlConnection connection, ILogger logger)
    {
        try
        {
            await ExecuteAsync(connection, "SELECT pg_advisory_unlock(@key)", CancellationToken.None, ("key", AdvisoryLockKey));
        }
        catch (Exception exception) when (exception is NpgsqlException or InvalidOperationException)
        {
            logger.LogWarning(exception, "Could not release the schema migration lock; the session's end releases it");
        }
    }

    /// <summary>
    /// The files of <c>sql/order.txt</c> this database has not applied yet (all of them when it has none). Needs only
    /// SELECT: a silo that does not apply the schema checks with it that it may start.
    /// </summary>
    public static async Task<IReadOnlyList<string>> PendingAsync(string connectionString, CancellationToken cancellationToken = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var exists = new NpgsqlCommand("SELECT to_regclass('billing_schema_migrations') IS NOT NULL", connection);
        if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken))!) return Files;
        await using var command = new NpgsqlCommand("SELECT coalesce(array_agg(name), '{}') FROM billing_schema_migrations", connection);
        var applied = ((string[])(await command.ExecuteScalarAsync(cancellationToken))!).ToHashSet();
        return Files.Where(f => !applied.Contains(f)).ToArray();
    }

    /// <summary>
    /// Grants the silos' database role exactly what a running silo needs, on the current schema of this database:
    /// CONNECT; USAGE on the schema (no CREATE); SELECT, INSERT, UPDATE, DELETE on its tables (the ledger, Orleans'
    /// membership and grain storage; DELETE for Orleans' clean-up of defunct silos and cleared grain state); USAGE and
    /// SELECT on its sequences; EXECUTE on its functions. No DDL, no TRUNCATE, no ownership. Run after every migration
    /// (the migrate verb does), so tables of new files are granted too. The role must exist.
    /// </summary>
    public static async Task GrantRuntimeAccessAsync(string connectionString, string role, CancellationToken cancellationToken = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        // A DO block takes no parameters: the role travels as a session setting and is quoted with format('%I').
        await ExecuteAsync(connection, "SELECT set_config('billing.silo_role', @role, false)", cancellationToken, ("role", role));
        await ExecuteAsync(connection, """
            DO $grant$
            DECLARE
                silo_role text := current_setting('billing.silo_role');
                schema_name text := current_schema();
            BEGIN
                EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), silo_role);
                EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', schema_name, silo_role);
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', schema_name, silo_role);
                EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', schema_name, silo_role);
                EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO %I', schema_name, silo_role);
            END
            $grant$
            """, cancellationToken);
    }

    internal static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static IReadOnlyList<string> ReadOrder() =>
        ReadResource("order.txt")
            .Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Where(line => !line.StartsWith('#'))
            .ToArray();

    private static string ReadResource(string name)
    {
        using var stream = typeof(SchemaMigrator).Assembly.GetManifestResourceStream("sql/" + name)
            ?? throw new InvalidOperationException($"Schema file sql/{name} is not embedded in {typeof(SchemaMigrator).Assembly.GetName().Name}.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
