using System.Net;
using Billing.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Orleans.Serialization;

namespace Billing.Cluster.Tests.Infrastructure;

/// <summary>A silo process and its ports; it listens on every address and advertises <see cref="Address"/>.</summary>
public sealed record SiloProcess(string Name, ChildProcess Process, int SiloPort, int GatewayPort, int DashboardPort, string Address = "127.0.0.1")
{
    public Uri Http => new($"http://127.0.0.1:{DashboardPort}");
}

/// <summary>The HTTP gateway (Client project) as a process.</summary>
public sealed record GatewayProcess(ChildProcess Process, int Port, string SigningKey)
{
    public Uri Http => new($"http://127.0.0.1:{Port}");
}

/// <summary>
/// One cluster of real processes on its own database of the throwaway PostgreSQL, with its own cluster id;
/// everything it started is killed on dispose.
/// </summary>
public sealed class ProcessCluster : IAsyncDisposable
{
    public const string ServiceId = "billing";

    private readonly List<ChildProcess> processes = [];
    private readonly List<BillingClusterClient> clients = [];

    private ProcessCluster(string connectionString, string clusterId)
    {
        ConnectionString = connectionString;
        ClusterId = clusterId;
    }

    public string ConnectionString { get; }

    public string ClusterId { get; }

    public static HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(15) };

    /// <summary>
    /// A database of its own, migrated the production way (<c>dotnet Billing.Silo.dll migrate</c>, on top of the kit's
    /// schema: it must find nothing left to do), and silos that do not apply the schema themselves.
    /// </summary>
    public static async Task<ProcessCluster> CreateAsync(string prefix)
    {
        var connectionString = await PostgresServer.Instance.CreateDatabaseAsync(prefix);
        var cluster = new ProcessCluster(connectionString, $"{prefix}-{Guid.NewGuid():N}"[..24]);
        var exit = await cluster.MigrateAsync();
        Assert.True(exit.Code == 0, exit.Output);
        return cluster;
    }

    /// <summary>Runs <c>dotnet Billing.Silo.dll migrate</c> on this cluster's database (plus <paramref name="environment"/>).</summary>
    public async Task<(int Code, string Output)> MigrateAsync(IReadOnlyDictionary<string, string?>? environment = null)
    {
        await using var migrate = ChildProcess.StartDotnet("migrate", Artifacts.SiloDll, ["migrate"], Environment(environment));
        Assert.True(await migrate.WaitForExitAsync(TimeSpan.FromSeconds(90)), migrate.Tail());
        return (migrate.ExitCode ?? -1, migrate.Tail());
    }

    private Dictionary<string, string?> Environment(IReadOnlyDictionary<string, string?>? extra) =>
        new(extra ?? new Dictionary<string, string?>())
        {
            ["ConnectionStrings__Billing"] = ConnectionString,
            ["Orleans__ClusterId"] = ClusterId,
            ["Orleans__ServiceId"] = ServiceId,
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["Billing__ApplySchema"] = "false", // the migrate verb did it
        };

    /// <summary>Starts one silo per name and waits until every one answers ready and is Active in the membership table.</summary>
    public async Task<SiloProcess[]> StartActiveSilosAsync(TimeSpan activeWithin, params string[] names)
    {
        var silos = names.Select(name => StartSilo(name)).ToArray();
        await Task.WhenAll(silos.Select(WaitReadyAsync));
        await WaitActiveAsync(activeWithin, silos.Select(s => s.SiloPort).ToArray());
        return silos;
    }

    /// <summary>Starts a billing silo (Silo project) on free ports; <see cref="WaitReadyAsync"/> waits for it.</summary>
    public SiloProcess StartSilo(string name, IReadOnlyDictionary<string, string?>? environment = null, string advertisedAddress = "127.0.0.1")
    {
        int siloPort = PostgresServer.FreePort(), gatewayPort = PostgresServer.FreePort(), dashboardPort = PostgresServer.FreePort();
        var process = ChildProcess.StartDotnet(name, Artifacts.SiloDll,
            [
                $"--Orleans:SiloPort={siloPort}", $"--Orleans:GatewayPort={gatewayPort}",
                $"--Orleans:DashboardPort={dashboardPort}", $"--Orleans:Name={name}",
                $"--Orleans:AdvertisedIPAddress={advertisedAddress}",
            ],
            Environment(WithSiloEnvironmentFile(environment)));
        processes.Add(process);
        return new SiloProcess(name, process, siloPort, gatewayPort, dashboardPort, advertisedAddress);
    }

    /// <summary>The silo's shipped runtime settings (Silo/silo.env) under the test's own variables.</summary>
    private static Dictionary<string, string?> WithSiloEnvironmentFile(IReadOnlyDictionary<string, string?>? environment)
    {
        var variables = SiloEnvironmentFile.Read(Artifacts.SiloDll).ToDictionary(v => v.Key, v => (string?)v.Value);
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>()) variables[key] = value;
        return variables;
    }

    /// <summary>Starts an agent silo (references Grains.Interfaces only); ready when its log says the silo started.</summary>
    public SiloProcess StartAgentSilo(string name)
    {
        int siloPort = PostgresServer.FreePort(), gatewayPort = PostgresServer.FreePort();
        var process = ChildProcess.StartDotnet(name, Artifacts.AgentSiloDll,
            [$"--Orleans:SiloPort={siloPort}", $"--Orleans:GatewayPort={gatewayPort}", $"--Orleans:Name={name}"],
            Environment(null));
        processes.Add(process);
        return new SiloProcess(name, process, siloPort, gatewayPort, 0);
    }

    /// <summary>Starts the HTTP gateway (the test fails when the Client project is not built).</summary>
    public GatewayProcess StartGateway(string name = "gateway", IReadOnlyDictionary<string, string?>? environment = null)
    {
        var dll = Artifacts.GatewayDll;
        var port = PostgresServer.FreePort();
        var key = $"cluster-test-signing-key-{Guid.NewGuid():N}";
        var variables = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>())
        {
            ["Auth__SigningKey"] = key,
        };
        variables.TryAdd("Gateway__ClusterCallTimeoutSeconds", "10");
        var process = ChildProcess.StartDotnet(name, dll, ["--urls", $"http://127.0.0.1:{port}"], Environment(variables));
        processes.Add(process);
        return new GatewayProcess(process, port, key);
    }

    /// <summary>Mints a token with the Client's <c>token</c> verb.</summary>
    public async Task<string> MintTokenAsync(GatewayProcess gateway, string role, Guid subject)
    {
        await using var token = ChildProcess.StartDotnet("token", Artifacts.GatewayDll, ["token", "--role", role, "--sub", subject.ToString()],
            Environment(new Dictionary<string, string?> { ["Auth__SigningKey"] = gateway.SigningKey }));
        Assert.True(await token.WaitForExitAsync(TimeSpan.FromSeconds(60)), token.Tail());
        Assert.True(token.ExitCode == 0, token.Tail());
        return token.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Last();
    }

    /// <summary>Waits until <paramref name="url"/> answers 200 (fails at once if the process exits).</summary>
    public static async Task WaitReadyAsync(ChildProcess process, Uri url, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"{process.Name} exited while starting.\n{process.Tail()}");
            try
            {
                using var response = await Http.GetAsync(url);
                if (response.StatusCode == HttpStatusCode.OK) return;
                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"{url} did not answer 200 within {timeout} (last: {last}).\n{process.Tail()}");
    }

    public static Task WaitReadyAsync(SiloProcess silo) =>
        WaitReadyAsync(silo.Process, new Uri(silo.Http, "/health/ready"), TimeSpan.FromSeconds(90));

    /// <summary>An Orleans client that connects only to the given gateway ports (static clustering).</summary>
    public Task<IClusterClient> ConnectAsync(params int[] gatewayPorts) =>
        ConnectAsync(options => BillingClusterClient.StartAsync(gatewayPorts.Select(p => new IPEndPoint(IPAddress.Loopback, p)).ToArray(), ClusterId, ServiceId, options));

    /// <summary>An Orleans client that connects only to the given gateway endpoints (static clustering).</summary>
    public Task<IClusterClient> ConnectAsync(params IPEndPoint[] gateways) =>
        ConnectAsync(options => BillingClusterClient.StartAsync(gateways, ClusterId, ServiceId, options));

    /// <summary>An Orleans client that finds the gateways in the membership table, as the HTTP gateway does.</summary>
    public Task<IClusterClient> ConnectThroughMembershipAsync() =>
        ConnectAsync(options => BillingClusterClient.StartAsync(ConnectionString, ClusterId, ServiceId, options));

    private async Task<IClusterClient> ConnectAsync(Func<BillingClientOptions, Task<BillingClusterClient>> start)
    {
        var client = await start(new BillingClientOptions
        {
            ResponseTimeout = TimeSpan.FromSeconds(10),
            GatewayListRefreshPeriod = TimeSpan.FromSeconds(2),
            // The agent silo's grain interface lives in its (executable) assembly: register its metadata.
            Configure = builder => builder.Services.AddSerializer(serializer => serializer.AddAssembly(typeof(Billing.Agents.IAgentGrain).Assembly)),
        });
        clients.Add(client);
        return client.Client;
    }

    /// <summary>The address each silo port advertises in OrleansMembershipTable (its latest row).</summary>
    public async Task<Dictionary<int, string>> AdvertisedAddressesAsync()
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT port, address FROM orleansmembershiptable WHERE deploymentid = @cluster ORDER BY generation", connection);
        command.Parameters.AddWithValue("cluster", ClusterId);
        var rows = new Dictionary<int, string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) rows[reader.GetInt32(0)] = reader.GetString(1);
        return rows;
    }

    /// <summary>The cluster's rows of OrleansMembershipTable: silo port and status (3 Active, 6 Dead).</summary>
    public async Task<Dictionary<int, int>> MembershipAsync()
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT port, status FROM orleansmembershiptable WHERE deploymentid = @cluster ORDER BY generation", connection);
        command.Parameters.AddWithValue("cluster", ClusterId);
        var rows = new Dictionary<int, int>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) rows[reader.GetInt32(0)] = reader.GetInt32(1);
        return rows;
    }

    /// <summary>Waits until every given silo port has a row with status Active (3).</summary>
    public async Task WaitActiveAsync(TimeSpan timeout, params int[] siloPorts)
    {
        var deadline = DateTime.UtcNow + timeout;
        Dictionary<int, int> rows = [];
        while (DateTime.UtcNow < deadline)
        {
            rows = await MembershipAsync();
            if (siloPorts.All(p => rows.TryGetValue(p, out var status) && status == 3)) return;
            await Task.Delay(250);
        }

        Assert.Fail($"Not all of {string.Join(", ", siloPorts)} Active in OrleansMembershipTable: {string.Join(", ", rows.Select(r => $"{r.Key}={r.Value}"))}");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in clients) await client.DisposeAsync();

        foreach (var process in processes) await process.DisposeAsync();
    }
}
