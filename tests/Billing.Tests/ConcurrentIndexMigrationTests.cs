using Billing.Storage;
using Billing.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// Migration 0016 builds the index of open billing errors concurrently: an upgrade on a large <c>billing_error</c>
/// table does not hold up the refusals (each inserts a billing error) while it builds, and an index an interrupted build
/// left invalid is built again instead of being kept.
/// </summary>
public sealed class ConcurrentIndexMigrationTests
{
    private const string OpenErrorsMigration = "billing/0016_open_billing_errors_index.sql";
    private const string OpenErrorsIndex = "billing_error_open_idx";

    /// <summary>What a migration of the database before 0016 applies: 0016 and every later file.</summary>
    private static readonly int FromOpenErrors = SchemaMigrator.Files.Count - SchemaMigrator.Files.TakeWhile(f => f != OpenErrorsMigration).Count();

    [Fact]
    public async Task Billing_errors_are_inserted_while_the_open_errors_index_waits_to_build()
    {
        var database = await DatabaseBefore(OpenErrorsMigration);
        await using var writer = await Open(database);
        await using var inserter = await Open(database);

        // A refusal in the middle of its transaction: the build must wait for it, whatever kind of build it is.
        await using var open = await writer.BeginTransactionAsync();
        await InsertBillingErrorAsync(writer);

        var migrating = SchemaMigrator.ApplyAsync(database, NullLogger.Instance);
        await WaitUntilTheBuildWaitsAsync(inserter, database);

        // Another refusal meanwhile. A plain CREATE INDEX queues a SHARE lock that every insert then waits behind; a
        // concurrent build takes none that an insert waits for.
        await MigrationSql.ExecuteAsync(inserter, "SET lock_timeout = '3s'");
        await InsertBillingErrorAsync(inserter);
        Assert.False(migrating.IsCompleted);

        await open.CommitAsync();
        Assert.Equal(FromOpenErrors, await migrating.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(await IndexIsValidAsync(inserter));
        Assert.Equal(2L, await ScalarAsync<long>(inserter, "SELECT count(*) FROM billing_error"));
        Assert.Empty(await SchemaMigrator.PendingAsync(database));
    }

    [Fact]
    public async Task A_build_that_waits_longer_than_the_connections_command_timeout_is_not_cut()
    {
        var database = await DatabaseBefore(OpenErrorsMigration);
        await using var writer = await Open(database);
        await using var open = await writer.BeginTransactionAsync();
        await InsertBillingErrorAsync(writer);

        // A deployment's connection string with a 1 s command timeout: the build waits for the open transaction longer.
        var migrating = SchemaMigrator.ApplyAsync(new NpgsqlConnectionStringBuilder(database) { CommandTimeout = 1 }.ConnectionString, NullLogger.Instance);
        await using var observer = await Open(database);
        await WaitUntilTheBuildWaitsAsync(observer, database);
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.False(migrating.IsCompleted, migrating.Exception?.ToString());

        await open.CommitAsync();
        Assert.Equal(FromOpenErrors, await migrating.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(await IndexIsValidAsync(observer));
    }

    [Fact]
    public async Task An_open_errors_index_that_an_interrupted_build_left_invalid_is_built_again()
    {
        var database = await DatabaseBefore(OpenErrorsMigration);
        await using var connection = await Open(database);
        await InsertBillingErrorAsync(connection);
        // What a build that failed half-way leaves: an index of that name, marked invalid (here one whose expression fails).
        await Assert.ThrowsAsync<PostgresException>(() =>
            MigrationSql.ExecuteAsync(connection, $"CREATE INDEX CONCURRENTLY {OpenErrorsIndex} ON billing_error ((1 / (seq - seq)))"));
        Assert.False(await IndexIsValidAsync(connection));

        Assert.Equal(FromOpenErrors, await SchemaMigrator.ApplyAsync(database, NullLogger.Instance));

        Assert.True(await IndexIsValidAsync(connection));
        var definition = await ScalarAsync<string>(connection, $"SELECT pg_get_indexdef('{OpenErrorsIndex}'::regclass)");
        Assert.Contains("(scope, scope_id, error_type, seq) WHERE (NOT resolved)", definition);
        Assert.Empty(await SchemaMigrator.PendingAsync(database));
    }

    [Fact]
    public async Task A_migration_run_again_after_the_build_and_before_its_record_applies_nothing_twice()
    {
        var database = await DatabaseBefore(OpenErrorsMigration);
        await using var connection = await Open(database);
        // The index built, then the process died before recording the file.
        await MigrationSql.ExecuteAsync(connection, $"CREATE INDEX {OpenErrorsIndex} ON billing_error (scope, scope_id, error_type, seq) WHERE NOT resolved");

        Assert.Equal(FromOpenErrors, await SchemaMigrator.ApplyAsync(database, NullLogger.Instance));

        Assert.True(await IndexIsValidAsync(connection));
        Assert.Empty(await SchemaMigrator.PendingAsync(database));
    }

    /// <summary>
    /// Two hosts migrating at once (an init job per host, or silos with ApplySchema): the second waited for the first in
    /// <c>pg_advisory_lock</c>, a statement that holds a snapshot, and a concurrent build waits for every older
    /// snapshot, so each waited for the other and PostgreSQL aborted one with 40P01 (deadlock detected).
    /// </summary>
    [Fact]
    public async Task ReviewDefect_Two_migrations_at_once_both_finish_while_one_builds_an_index_concurrently()
    {
        var database = await DatabaseBefore(OpenErrorsMigration);
        await using var writer = await Open(database);
        await using var observer = await Open(database);
        await using var open = await writer.BeginTransactionAsync();
        await InsertBillingErrorAsync(writer);

        var first = SchemaMigrator.ApplyAsync(database, NullLogger.Instance);
        await WaitUntilTheBuildWaitsAsync(observer, database); // the first holds the lock, its build waits for `open`
        var second = SchemaMigrator.ApplyAsync(database, NullLogger.Instance);
        // Let the second reach its wait for the lock (seen as an ungranted advisory lock when it blocks in the database).
        for (var i = 0; i < 60 && await ScalarAsync<long>(observer, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == 0; i++)
            await Task.Delay(50);
        await open.CommitAsync();

        var applied = await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal([FromOpenErrors, 0], applied);
        Assert.True(await IndexIsValidAsync(observer));
        Assert.Empty(await SchemaMigrator.PendingAsync(database));
    }

    private static async Task<string> DatabaseBefore(string migration)
    {
        Assert.Contains(migration, SchemaMigrator.Files);
        return await PostgresServer.Instance.CreateDatabaseAsync("cic", SchemaMigrator.Files.TakeWhile(f => f != migration).ToArray());
    }

    private static async Task<NpgsqlConnection> Open(string database)
    {
        var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        return connection;
    }

    private static Task InsertBillingErrorAsync(NpgsqlConnection connection) =>
        MigrationSql.ExecuteAsync(connection,
            "INSERT INTO billing_error (id, scope, scope_id, error_type, message, usage_id, created_at) VALUES ($1, 'project', $2, 'insufficient_balance', 'refused', $3, now())",
            Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());

    /// <summary>Until the migrator's CREATE INDEX waits for a lock (the open transaction's).</summary>
    private static async Task WaitUntilTheBuildWaitsAsync(NpgsqlConnection connection, string database)
    {
        var name = new NpgsqlConnectionStringBuilder(database).Database;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await ScalarAsync<long>(connection, $"""
            SELECT count(*) FROM pg_stat_activity
            WHERE datname = '{name}' AND pid <> pg_backend_pid() AND query ILIKE '%CREATE INDEX%{OpenErrorsIndex}%' AND wait_event_type = 'Lock'
            """) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "The migrator's CREATE INDEX never waited for the open transaction.");
            await Task.Delay(50);
        }
    }

    private static async Task<bool?> IndexIsValidAsync(NpgsqlConnection connection) =>
        await ScalarAsync<bool?>(connection, $"SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('{OpenErrorsIndex}')");

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is DBNull or null ? default! : (T)value;
    }
}
