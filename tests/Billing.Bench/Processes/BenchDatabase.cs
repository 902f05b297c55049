using System.Diagnostics;
using Billing.Testing;
using Npgsql;
using static Billing.Bench.Report.Progress;

namespace Billing.Bench.Processes;

/// <summary>
/// The PostgreSQL of a run: a throwaway server (or BILLING_TEST_DB) with a fresh database and the schema of sql/, and
/// the bench's connections to it.
/// </summary>
internal sealed class BenchDatabase : IAsyncDisposable
{
    /// <summary>The schema of the DB-only experiment's tables: first on the search path of <see cref="Experiment"/>.</summary>
    public const string ExperimentSchema = "xp";

    private BenchDatabase(string connectionString, BenchOptions options)
    {
        ConnectionString = connectionString;
        Bench = NpgsqlDataSource.Create(connectionString);
        var extra = string.IsNullOrWhiteSpace(options.ExperimentConnectionExtra) ? "" : ";" + options.ExperimentConnectionExtra;
        // The grains' statement names its tables without a schema: the search path points it at the experiment's copies.
        var experiment = new NpgsqlConnectionStringBuilder(connectionString) { SearchPath = $"{ExperimentSchema},public" }.ConnectionString;
        Experiment = NpgsqlDataSource.Create(experiment + extra);
        GrainTables = NpgsqlDataSource.Create(connectionString + extra);
    }

    public string ConnectionString { get; }

    /// <summary>The bench's own connections: the seed's transaction, seeding, the ledger checks and counters.</summary>
    public NpgsqlDataSource Bench { get; }

    /// <summary>db-single and db-shared: the experiment's tables (schema <see cref="ExperimentSchema"/>), with --xp-db-options.</summary>
    public NpgsqlDataSource Experiment { get; }

    /// <summary>db-grain: the grains' own tables, with --xp-db-options.</summary>
    public NpgsqlDataSource GrainTables { get; }

    /// <summary>The postmaster's pid when the server is a local process (its CPU is read from /proc), else 0.</summary>
    public int PostmasterPid { get; private set; }

    public static async Task<BenchDatabase> StartAsync(BenchOptions options)
    {
        var given = Environment.GetEnvironmentVariable("BILLING_TEST_DB");
        var server = PostgresServer.Instance;
        Say(string.IsNullOrWhiteSpace(given)
            ? $"PostgreSQL: started a throwaway server of this machine's binaries ({PostgresServer.FindPostgresBin()}) on 127.0.0.1:{server.Port}, " +
              $"data in {server.DataDirectory} (initdb --no-sync only speeds up initdb itself; the server runs with its defaults)"
            : $"PostgreSQL: using BILLING_TEST_DB (port {server.Port})");
        var cs = await server.CreateDatabaseAsync("bench");
        var database = new BenchDatabase(new NpgsqlConnectionStringBuilder(cs) { MaxPoolSize = 200, Timeout = 30, CommandTimeout = 60 }.ConnectionString, options);
        var db = database.Bench;
        var settings = new List<string>();
        foreach (var name in new[] { "server_version", "fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "commit_delay", "shared_buffers", "max_connections" })
            settings.Add($"{name}={await ScalarAsync<string>(db, $"SHOW {name}")}");
        Say($"PostgreSQL settings: {string.Join(' ', settings)}; database {new NpgsqlConnectionStringBuilder(cs).Database} with the schema of sql/ applied");
        if (await ScalarAsync<string>(db, "SHOW fsync") != "on" || await ScalarAsync<string>(db, "SHOW synchronous_commit") != "on")
            Say("WARNING: fsync or synchronous_commit is off: the figures are not durable-commit figures");
        var backend = await ScalarAsync<int>(db, "SELECT pg_backend_pid()");
        // CPU of PostgreSQL is read from /proc: only when the server is a local process (its backend is "postgres").
        var local = File.Exists($"/proc/{backend}/comm") && File.ReadAllText($"/proc/{backend}/comm").Trim() == "postgres";
        database.PostmasterPid = local ? ProcStats.ParentPid(backend) ?? 0 : 0;
        if (!local) Say("PostgreSQL is not a local process: cpu_pg will read 0");
        return database;
    }

    /// <summary>The silo's and gateway's connection string: a smaller pool, plus --silo-db-options.</summary>
    public string ServiceConnectionString(BenchOptions options)
    {
        var s = new NpgsqlConnectionStringBuilder(ConnectionString) { MaxPoolSize = 100 }.ConnectionString;
        return string.IsNullOrWhiteSpace(options.SiloConnectionExtra) ? s : s + ";" + options.SiloConnectionExtra;
    }

    /// <summary>
    /// Vacuums and analyzes what seeding wrote and flushes it (CHECKPOINT, where the role may), so the first cases do
    /// not share the machine with the autovacuum and checkpoint that 10,000 new accounts set off (seen: the first two
    /// runs' HOT hold p99 at 45–50 ms, the third's at 19 ms).
    /// </summary>
    public async Task SettleAfterSeedingAsync()
    {
        var settling = Stopwatch.StartNew();
        await ExecuteAsync(Bench, "VACUUM (ANALYZE)");
        try
        {
            await ExecuteAsync(Bench, "CHECKPOINT");
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            Say("seed: CHECKPOINT not allowed for this role; the first cases may share the machine with it");
        }

        Say($"seed: vacuumed, analyzed and checkpointed in {settling.Elapsed.TotalSeconds:F1} s");
    }

    public static async Task ExecuteAsync(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        command.CommandTimeout = 600;
        await command.ExecuteNonQueryAsync();
    }

    public static async Task<T> ScalarAsync<T>(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        command.CommandTimeout = 600;
        return (T)(await command.ExecuteScalarAsync())!;
    }

    public async ValueTask DisposeAsync()
    {
        await Bench.DisposeAsync();
        await Experiment.DisposeAsync();
        await GrainTables.DisposeAsync();
    }
}
