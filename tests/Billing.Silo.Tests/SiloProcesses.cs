using Billing.Testing;
using Npgsql;

namespace Billing.Silo.Tests;

/// <summary>The built silo (Silo/bin/&lt;configuration&gt;/net10.0/Billing.Silo.dll) as a child process, and databases for it.</summary>
public static class SiloProcesses
{
    public static string SiloDll { get; } = FindSiloDll();

    public static HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(15) };

    /// <summary>Starts the silo with exactly this environment name and these settings (no appsettings of the test).</summary>
    public static ChildProcess Start(string name, string environmentName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var variables = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>())
        {
            ["DOTNET_ENVIRONMENT"] = environmentName,
            ["ASPNETCORE_ENVIRONMENT"] = environmentName,
            ["ConnectionStrings__Billing"] = environment?.GetValueOrDefault("ConnectionStrings__Billing"),
        };
        return ChildProcess.StartDotnet(name, SiloDll, arguments, variables);
    }

    /// <summary>Runs the silo's <c>migrate</c> verb to its end; returns its exit code and output.</summary>
    public static async Task<(int Code, string Output)> MigrateAsync(params string[] arguments)
    {
        await using var migrate = Start("migrate", "Production", ["migrate", .. arguments]);
        Assert.True(await migrate.WaitForExitAsync(TimeSpan.FromSeconds(90)), migrate.Tail());
        return (migrate.ExitCode ?? -1, migrate.Output);
    }

    /// <summary>An empty database (no schema) on the kit's throwaway PostgreSQL; its owner's connection string.</summary>
    public static async Task<string> CreateEmptyDatabaseAsync(string prefix)
    {
        var name = $"{prefix}_{Environment.ProcessId}_{Guid.NewGuid():N}"[..40];
        await ExecuteAsync(PostgresServer.Instance.AdminConnectionString, $"CREATE DATABASE \"{name}\"");
        return new NpgsqlConnectionStringBuilder(PostgresServer.Instance.AdminConnectionString) { Database = name }.ConnectionString;
    }

    public static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Waits until <paramref name="url"/> answers 200; fails at once when the process exits.</summary>
    public static async Task WaitOkAsync(ChildProcess process, Uri url, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"{process.Name} exited while starting.\n{process.Tail()}");
            try
            {
                using var response = await Http.GetAsync(url);
                if (response.IsSuccessStatusCode) return;
                last = $"{(int)response.StatusCode}";
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"{url} did not answer 200 within {timeout} (last: {last}).\n{process.Tail()}");
    }

    private static string FindSiloDll()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Billing.sln"))) continue;
            var path = Path.Combine(dir.FullName, "Silo", "bin", configuration, "net10.0", "Billing.Silo.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is not built: dotnet build Billing.sln -c {configuration}", path);
        }

        throw new InvalidOperationException($"Billing.sln not found above {AppContext.BaseDirectory}.");
    }
}
