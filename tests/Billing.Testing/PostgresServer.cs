using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Billing.Testing;

/// <summary>
/// A throwaway PostgreSQL for one test process: initdb into a temporary folder, pg_ctl start on a free
/// loopback port (as the <c>postgres</c> OS user when running as root, since PostgreSQL refuses root),
/// removed when the process exits. With <c>BILLING_TEST_DB</c> set, that server is used instead.
/// </summary>
public sealed class PostgresServer
{
    private static readonly Lazy<PostgresServer> Shared = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int databaseCounter;

    private readonly string? dataDirectory;

    private PostgresServer(string adminConnectionString, string? dataDirectory, int port)
    {
        AdminConnectionString = adminConnectionString;
        this.dataDirectory = dataDirectory;
        Port = port;
    }

    /// <summary>The server of this test process, started on first use.</summary>
    public static PostgresServer Instance => Shared.Value;

    public string AdminConnectionString { get; }

    public int Port { get; }

    /// <summary>The data folder of a server this process started (null for <c>BILLING_TEST_DB</c>).</summary>
    public string? DataDirectory => dataDirectory;

    private static bool IsRoot => Environment.UserName == "root";

    /// <summary>Creates an empty database with the whole schema of <c>sql/</c> applied; returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "billing") => await CreateDatabaseAsync(prefix, Billing.Storage.SchemaMigrator.Files);

    /// <summary>Creates a database with only <paramref name="schemaFiles"/> applied (an older schema, for migration tests).</summary>
    public async Task<string> CreateDatabaseAsync(string prefix, IReadOnlyList<string> schemaFiles)
    {
        var name = $"{prefix}_{Environment.ProcessId}_{Interlocked.Increment(ref databaseCounter)}";
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        var connectionString = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name, MaxPoolSize = 50 }.ConnectionString;
        await Billing.Storage.SchemaMigrator.ApplyAsync(connectionString, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, schemaFiles);
        return connectionString;
    }

    /// <summary>Restarts the server (<c>pg_ctl restart -m fast</c>); only for a server this process started.</summary>
    public void Restart()
    {
        if (dataDirectory is null) throw new InvalidOperationException("BILLING_TEST_DB is set: not restarting a server this process did not start.");
        PgCtl($"-D {dataDirectory} -m fast -w restart");
    }

    /// <summary>
    /// Restarts the server the hard way (<c>pg_ctl restart -m immediate</c>): every backend is killed without a
    /// goodbye, open connections break mid-statement and the server runs crash recovery before it accepts new ones.
    /// Only for a server this process started.
    /// </summary>
    public void RestartImmediate()
    {
        if (dataDirectory is null) throw new InvalidOperationException("BILLING_TEST_DB is set: not restarting a server this process did not start.");
        // -l as at start: without it the new server would write to (and hold open) this process's pipe.
        PgCtl($"-D {dataDirectory} -l {Path.Combine(Path.GetDirectoryName(dataDirectory)!, "postgres.log")} -m immediate -w -t 60 restart");
    }

    private static PostgresServer Start()
    {
        var given = Environment.GetEnvironmentVariable("BILLING_TEST_DB");
        if (!string.IsNullOrWhiteSpace(given))
        {
            var builder = new NpgsqlConnectionStringBuilder(given);
            return new PostgresServer(given, null, builder.Port);
        }

        // The postgres user must be able to enter every folder on the path: use one under /tmp.
        var root = Path.Combine(Path.GetTempPath(), $"billing-test-pg-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(root);
        var data = Path.Combine(root, "data");
        var socket = Path.Combine(root, "socket");
        Directory.CreateDirectory(socket);
        if (IsRoot) Run("chown", $"-R postgres:postgres {root}");

        var bin = FindPostgresBin();
        RunAsPostgres(Path.Combine(bin, "initdb"), $"-D {data} -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync");
        var port = FreePort();
        File.AppendAllText(Path.Combine(data, "postgresql.conf"),
            $"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket}'\nmax_connections = 300\nshared_buffers = 128MB\n");
        RunAsPostgres(Path.Combine(bin, "pg_ctl"), $"-D {data} -l {Path.Combine(root, "postgres.log")} -w -t 60 start");

        var server = new PostgresServer($"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Timeout=15", data, port);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.StopAndRemove(root);
        return server;
    }

    private void StopAndRemove(string root)
    {
        try
        {
            PgCtl($"-D {dataDirectory} -m immediate -w stop");
        }
        catch
        {
            // Best effort at exit: the folder is removed below either way.
        }

        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static void PgCtl(string arguments) => RunAsPostgres(Path.Combine(FindPostgresBin(), "pg_ctl"), arguments);

    /// <summary>The folder of initdb and pg_ctl: on PATH, else Debian's versioned folder.</summary>
    public static string FindPostgresBin()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            if (File.Exists(Path.Combine(dir, "pg_ctl"))) return dir;
        }

        var debian = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().Select(d => Path.Combine(d, "bin")).FirstOrDefault(Directory.Exists)
            : null;
        return debian ?? throw new InvalidOperationException("PostgreSQL binaries (initdb, pg_ctl) not found; install PostgreSQL 15.");
    }

    private static void RunAsPostgres(string program, string arguments)
    {
        if (IsRoot) Run("runuser", $"-u postgres -- {program} {arguments}");
        else Run(program, arguments);
    }

    private static void Run(string program, string arguments)
    {
        var info = new ProcessStartInfo(program, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/tmp",
        };
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2))) throw new TimeoutException($"{program} {arguments} did not finish");
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {arguments} exited {process.ExitCode}: {output.Result}{error.Result}");
    }

    /// <summary>
    /// A port no listener holds, below the kernel's ephemeral range. A port the kernel hands out for port 0 comes from
    /// that range, which every outgoing connection (each Npgsql and HTTP connection of the tests) also draws from: a
    /// silo that then binds it on every address found it taken by such a connection ("Address already in use", seen
    /// in CI). Ports here are handed out in turn from a random start, so one test process never gets one twice.
    /// </summary>
    public static int FreePort()
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = ListenerPorts.Low + (int)((uint)Interlocked.Increment(ref nextListenerPort) % (uint)(ListenerPorts.High - ListenerPorts.Low));
            if (IsFree(IPAddress.Any, port) && IsFree(IPAddress.Loopback, port)) return port;
        }

        throw new InvalidOperationException($"No free port between {ListenerPorts.Low} and {ListenerPorts.High}.");
    }

    private static int nextListenerPort = Random.Shared.Next(0, 1 << 20);

    /// <summary>Below the ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range, usually 32768–60999).</summary>
    private static readonly (int Low, int High) ListenerPorts = ReadListenerPorts();

    private static (int Low, int High) ReadListenerPorts()
    {
        const string range = "/proc/sys/net/ipv4/ip_local_port_range";
        var ephemeralLow = File.Exists(range) && int.TryParse(File.ReadAllText(range).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0], out var low) ? low : 32768;
        return ephemeralLow >= 12000 ? (ephemeralLow - 10000, ephemeralLow) : (61000, 65000);
    }

    private static bool IsFree(IPAddress address, int port)
    {
        try
        {
            using var listener = new TcpListener(address, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
