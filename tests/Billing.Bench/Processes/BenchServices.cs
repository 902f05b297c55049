using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using Billing.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using static Billing.Bench.Report.Progress;

namespace Billing.Bench.Processes;

/// <summary>
/// The services under test: <see cref="SiloCount"/> silos (one by default; --silos) and, for path=http, the gateway, as
/// child processes (the only place the bench starts or stops them), the bench's Orleans client (it spreads its calls over
/// the silos' gateways) and its HTTP client with a service token.
/// </summary>
internal sealed class BenchServices : IAsyncDisposable
{
    private const string ServiceId = "billing";

    private readonly BenchOptions options;
    private readonly BenchDatabase database;
    private readonly string clusterId;
    private readonly string logDirectory;
    private readonly List<ChildProcess> silos = [];
    private ChildProcess? gateway;
    private BillingClusterClient? client;

    private BenchServices(BenchOptions options, BenchDatabase database, string runId, string logDirectory, int siloCount)
    {
        this.options = options;
        this.database = database;
        SiloCount = siloCount;
        clusterId = $"bench-{runId}-{siloCount}silo";
        this.logDirectory = logDirectory;
    }

    public int SiloCount { get; }

    public IClusterClient Cluster { get; private set; } = null!;

    /// <summary>The gateway's HTTP client; null when no case takes path=http.</summary>
    public HttpClient? Http { get; private set; }

    public int[] SiloPids => silos.Select(s => s.Pid).ToArray();

    /// <summary>The silos' working sets (VmRSS) added up, in kB.</summary>
    public long? SiloRssKb => Sum("VmRSS");

    /// <summary>The silos' peak working sets (VmHWM) added up, in kB.</summary>
    public long? SiloHwmKb => Sum("VmHWM");

    /// <summary>The silos' working set when they had just become active, in kB (the base of memory per account).</summary>
    public long SiloStartRssKb { get; private set; }

    public int? GatewayPid => gateway?.Pid;

    public static async Task<BenchServices> StartAsync(BenchOptions options, BenchDatabase database, string runId, string logDirectory, int siloCount)
    {
        var services = new BenchServices(options, database, runId, logDirectory, siloCount);
        await services.StartSilosAsync();
        if (options.Paths.Contains("http")) await services.StartGatewayAsync();
        return services;
    }

    /// <summary>The children that died, each with the end of its log.</summary>
    public IEnumerable<string> Deaths() =>
        silos.Append(gateway).Where(child => child is { HasExited: true }).Select(child => $"the {child!.Name} process died:\n{child.Tail()}");

    /// <summary>
    /// Kills the children when the bench exits, however it exits. The Orleans client's host would swallow SIGTERM/SIGINT:
    /// stop the children and leave at once instead. Dispose the result to unregister.
    /// </summary>
    public static IDisposable KillChildrenOnExit()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillChildren();
        var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => { KillChildren(); Environment.Exit(143); });
        var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, _ => { KillChildren(); Environment.Exit(130); });
        return new Registrations(onTerm, onInt);
    }

    public static void KillChildren() => ChildProcess.KillAll();

    /// <summary>Disconnects the clients and stops the silos and the gateway (the next silo count starts its own).</summary>
    public async ValueTask DisposeAsync()
    {
        if (client is not null) await client.DisposeAsync();
        Http?.Dispose();
        foreach (var child in silos.Append(gateway))
        {
            if (child is null) continue;
            child.Kill();
            await child.DisposeAsync();
        }
    }

    private long? Sum(string field)
    {
        var values = silos.Select(s => ProcStats.StatusValue(s.Pid, field)).ToArray();
        return values.Any(v => v is null) ? null : values.Sum(v => v!.Value);
    }

    private async Task StartSilosAsync()
    {
        for (var i = 0; i < SiloCount; i++) silos.Add(StartSilo(i));
        var started = Stopwatch.StartNew();
        while (true)
        {
            foreach (var silo in silos)
            {
                if (silo.HasExited) throw new InvalidOperationException($"the {silo.Name} exited during start-up:\n{silo.Tail()}");
            }

            if (started.Elapsed > TimeSpan.FromSeconds(90)) throw new TimeoutException($"the silos did not become active in 90 s:\n{silos[^1].Tail()}");
            try
            {
                await using var command = database.Bench.CreateCommand("SELECT count(*) FROM orleansmembershiptable WHERE deploymentid = $1 AND status = 3");
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
                if ((long)(await command.ExecuteScalarAsync())! >= SiloCount) break;
            }
            catch (PostgresException)
            {
            }

            await Task.Delay(250);
        }

        SiloStartRssKb = SiloRssKb ?? 0;
        Say($"silos: {SiloCount} active after {started.Elapsed.TotalSeconds:F1} s, pids {string.Join(',', SiloPids)}, working set {Report.BenchReport.Mb(SiloRssKb)} MB");

        client = await BillingClusterClient.StartAsync(database.ConnectionString, clusterId, ServiceId,
            new BillingClientOptions { ConsoleLogLevel = LogLevel.Warning, ResponseTimeout = null });
        Cluster = client.Client;
        Say("Orleans client: connected (ADO.NET clustering on the same PostgreSQL)");
    }

    private ChildProcess StartSilo(int index)
    {
        var siloPort = PostgresServer.FreePort();
        var gatewayPort = PostgresServer.FreePort();
        var dashboardPort = PostgresServer.FreePort();
        var env = new Dictionary<string, string>
        {
            ["ConnectionStrings__Billing"] = database.ServiceConnectionString(options),
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = ServiceId,
            ["Orleans__SiloPort"] = siloPort.ToString(),
            ["Orleans__GatewayPort"] = gatewayPort.ToString(),
            ["Orleans__DashboardPort"] = dashboardPort.ToString(),
            ["Logging__LogLevel__Default"] = options.SiloLogLevel,
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
        };
        // As shipped (Silo/silo.env), then --silo-env on top.
        foreach (var (key, value) in SiloEnvironmentFile.Read(options.SiloDll!)) env[key] = value;
        foreach (var (key, value) in options.SiloEnvironment) env[key] = value;
        Say($"silo {index + 1}/{SiloCount}: starting dotnet {Path.GetRelativePath(options.Root, options.SiloDll!)} (silo {siloPort}, gateway {gatewayPort}, dashboard {dashboardPort}, cluster {clusterId})");
        var name = SiloCount == 1 ? "silo" : $"silo{index + 1}";
        return ChildProcess.StartDotnet(name, options.SiloDll!, [], env!, Path.Combine(logDirectory, $"{name}-{SiloCount}.log"));
    }

    private async Task StartGatewayAsync()
    {
        var port = PostgresServer.FreePort();
        var signingKey = Convert.ToHexString(Guid.NewGuid().ToByteArray()) + Convert.ToHexString(Guid.NewGuid().ToByteArray());
        var env = new Dictionary<string, string>
        {
            ["ConnectionStrings__Billing"] = database.ServiceConnectionString(options),
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = ServiceId,
            ["Auth__SigningKey"] = signingKey,
            ["Logging__LogLevel__Default"] = options.SiloLogLevel,
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
        };
        foreach (var (key, value) in options.GatewayEnvironment) env[key] = value;
        var url = $"http://127.0.0.1:{port}";
        Say($"gateway: starting dotnet {Path.GetRelativePath(options.Root, options.GatewayDll!)} --urls {url}");
        gateway = ChildProcess.StartDotnet("gateway", options.GatewayDll!, ["--urls", url], env!, Path.Combine(logDirectory, $"gateway-{SiloCount}.log"));

        var token = await MintTokenAsync(env);
        Http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 1024,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
        })
        {
            BaseAddress = new Uri(url),
            Timeout = TimeSpan.FromSeconds(30),
        };
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

        var started = Stopwatch.StartNew();
        while (true)
        {
            if (gateway.HasExited) throw new InvalidOperationException($"the gateway exited during start-up:\n{gateway.Tail()}");
            if (started.Elapsed > TimeSpan.FromSeconds(90)) throw new TimeoutException($"the gateway was not ready in 90 s:\n{gateway.Tail()}");
            try
            {
                using var response = await Http.GetAsync("/health/ready");
                if (response.IsSuccessStatusCode) break;
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(250);
        }

        Say($"gateway: ready after {started.Elapsed.TotalSeconds:F1} s, pid {gateway.Pid}; service token minted with its token verb");
    }

    /// <summary>A service token from the gateway's own <c>token</c> verb, signed with the key the gateway was given.</summary>
    private async Task<string> MintTokenAsync(Dictionary<string, string> env)
    {
        var mint = ChildProcess.StartDotnet("token", options.GatewayDll!, ["token", "--role", "service", "--sub", Guid.NewGuid().ToString()], env!,
            Path.Combine(logDirectory, $"token-{SiloCount}.log"));
        await mint.WaitForExitAsync(TimeSpan.FromSeconds(60));
        var output = mint.Output;
        var token = output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.StartsWith("Bearer ", StringComparison.Ordinal) ? l[7..] : l)
            .LastOrDefault(l => l.Count(c => c == '.') == 2 && !l.Contains(' '));
        return token ?? throw new InvalidOperationException($"could not mint a token (exit {mint.ExitCode}): {output}");
    }

    private sealed class Registrations(params IDisposable[] registrations) : IDisposable
    {
        public void Dispose()
        {
            foreach (var registration in registrations) registration.Dispose();
        }
    }
}
