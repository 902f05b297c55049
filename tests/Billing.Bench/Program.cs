using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Billing;
using Billing.Bench;
using Billing.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

AppDomain.CurrentDomain.ProcessExit += (_, _) => ChildProcess.KillAll();
// The Orleans client's host would swallow SIGTERM/SIGINT: stop the children and leave at once instead.
using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, _ => { ChildProcess.KillAll(); Environment.Exit(143); });
using var onInt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, _ => { ChildProcess.KillAll(); Environment.Exit(130); });
ThreadPool.GetMinThreads(out var minWorkers, out var minIo);
ThreadPool.SetMinThreads(Math.Max(minWorkers, 32), minIo);

try
{
    return await new Bench(options).RunAsync();
}
finally
{
    ChildProcess.KillAll();
}

internal sealed class Bench(BenchOptions options)
{
    private const decimal HotTopUp = 100_000_000m;
    private const decimal SpreadTopUp = 1_000_000m;

    private readonly List<(string Line, CaseSummary Summary)> results = [];
    private readonly string runId = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss");
    private readonly Guid modelId = Guid.NewGuid();
    private NpgsqlDataSource db = null!;
    private NpgsqlDataSource xp = null!;
    private string connectionString = "";
    private string logDirectory = "";
    private ChildProcess? silo;
    private ChildProcess? gateway;
    private IHost? clientHost;
    private IClusterClient? cluster;
    private HttpClient? http;
    private int postmasterPid;
    private bool failed;
    private long siloPeakKb;

    private GrainStatementBench? grainStatement;
    private (Guid Project, Guid User) hot;
    private (Guid Project, Guid User)[] spread = [];

    private static void Say(string message) => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

    public async Task<int> RunAsync()
    {
        logDirectory = Path.Combine(options.Root, ".artifacts", "bench", runId);
        Directory.CreateDirectory(logDirectory);
        Say($"bench run {runId}: seconds={options.Seconds} warmup={options.WarmupSeconds} clients={string.Join(',', options.Clients)} " +
            $"paths={string.Join(',', options.Paths)} accounts={string.Join(',', options.Accounts)} modes={string.Join(',', options.Modes)} " +
            $"projects={options.SpreadProjects} cores={Environment.ProcessorCount}; logs in {logDirectory}");

        await StartDatabaseAsync();
        var needOrleans = options.Modes.Contains("orleans");
        if (needOrleans)
        {
            await StartSiloAsync();
            if (options.Paths.Contains("http")) await StartGatewayAsync();
        }

        await SeedAsync(needOrleans);

        foreach (var accounts in options.Accounts)
        {
            foreach (var clients in options.Clients)
            {
                double? seedOps = null;
                if (options.Modes.Contains("seed")) seedOps = await RunCaseAsync(accounts, "npgsql", "seed", clients, null);
                if (options.Modes.Contains("db-single")) await RunCaseAsync(accounts, "npgsql", "db-single", clients, seedOps);
                if (options.Modes.Contains("db-shared")) await RunCaseAsync(accounts, "npgsql", "db-shared", clients, seedOps);
                if (options.Modes.Contains("db-grain")) await RunCaseAsync(accounts, "npgsql", "db-grain", clients, seedOps);
                if (!needOrleans) continue;
                foreach (var path in options.Paths) await RunCaseAsync(accounts, path, "orleans", clients, seedOps);
            }
        }

        PrintTable();
        if (clientHost is not null) await clientHost.StopAsync(TimeSpan.FromSeconds(5));
        if (failed)
        {
            Console.WriteLine("bench FAILED: a case lost money, acknowledged a charge that is not stored, or its process died (see above).");
            return 1;
        }

        Console.WriteLine("bench OK: the ledger balanced after every case.");
        return 0;
    }

    // ---------------------------------------------------------------- set-up

    private async Task StartDatabaseAsync()
    {
        var given = Environment.GetEnvironmentVariable("BILLING_TEST_DB");
        var server = PostgresServer.Instance;
        Say(string.IsNullOrWhiteSpace(given)
            ? $"PostgreSQL: started a throwaway server of this machine's binaries ({PostgresServer.FindPostgresBin()}) on 127.0.0.1:{server.Port}, " +
              $"data in {server.DataDirectory} (initdb --no-sync only speeds up initdb itself; the server runs with its defaults)"
            : $"PostgreSQL: using BILLING_TEST_DB (port {server.Port})");
        var cs = await server.CreateDatabaseAsync("bench");
        connectionString = new NpgsqlConnectionStringBuilder(cs) { MaxPoolSize = 200, Timeout = 30, CommandTimeout = 60 }.ConnectionString;
        db = NpgsqlDataSource.Create(connectionString);
        xp = NpgsqlDataSource.Create(string.IsNullOrWhiteSpace(options.ExperimentConnectionExtra) ? connectionString : connectionString + ";" + options.ExperimentConnectionExtra);
        var settings = new List<string>();
        foreach (var name in new[] { "server_version", "fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "commit_delay", "shared_buffers", "max_connections" })
            settings.Add($"{name}={await Database.ScalarAsync<string>(db, $"SHOW {name}")}");
        Say($"PostgreSQL settings: {string.Join(' ', settings)}; database {new NpgsqlConnectionStringBuilder(cs).Database} with the schema of sql/ applied");
        if (await Database.ScalarAsync<string>(db, "SHOW fsync") != "on" || await Database.ScalarAsync<string>(db, "SHOW synchronous_commit") != "on")
            Say("WARNING: fsync or synchronous_commit is off: the figures are not durable-commit figures");
        var backend = await Database.ScalarAsync<int>(db, "SELECT pg_backend_pid()");
        // CPU of PostgreSQL is read from /proc: only when the server is a local process (its backend is "postgres").
        var local = File.Exists($"/proc/{backend}/comm") && File.ReadAllText($"/proc/{backend}/comm").Trim() == "postgres";
        postmasterPid = local ? ProcStats.ParentPid(backend) ?? 0 : 0;
        if (!local) Say("PostgreSQL is not a local process: cpu_pg will read 0");
        await Database.ExecuteAsync(db, Database.SeedSchema);
        await Database.ExecuteAsync(db, Database.ExperimentSchema);
        if (options.ExperimentForeignKey) await Database.ExecuteAsync(db, Database.ExperimentForeignKey);
    }

    private string ServiceConnectionString()
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = 100 };
        var s = b.ConnectionString;
        return string.IsNullOrWhiteSpace(options.SiloConnectionExtra) ? s : s + ";" + options.SiloConnectionExtra;
    }

    private string ClusterId => $"bench-{runId}";

    private const string ServiceId = "billing";

    private async Task StartSiloAsync()
    {
        var siloPort = PostgresServer.FreePort();
        var gatewayPort = PostgresServer.FreePort();
        var dashboardPort = PostgresServer.FreePort();
        var env = new Dictionary<string, string>
        {
            ["ConnectionStrings__Billing"] = ServiceConnectionString(),
            ["Orleans__ClusterId"] = ClusterId,
            ["Orleans__ServiceId"] = ServiceId,
            ["Orleans__SiloPort"] = siloPort.ToString(),
            ["Orleans__GatewayPort"] = gatewayPort.ToString(),
            ["Orleans__DashboardPort"] = dashboardPort.ToString(),
            ["Logging__LogLevel__Default"] = options.SiloLogLevel,
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
        };
        foreach (var (key, value) in options.SiloEnvironment) env[key] = value;
        Say($"silo: starting dotnet {Path.GetRelativePath(options.Root, options.SiloDll!)} (silo {siloPort}, gateway {gatewayPort}, dashboard {dashboardPort}, cluster {ClusterId})");
        silo = ChildProcess.StartDotnet("silo", options.SiloDll!, [], env!, Path.Combine(logDirectory, "silo.log"));
        var started = Stopwatch.StartNew();
        while (true)
        {
            if (silo.HasExited) throw new InvalidOperationException($"the silo exited during start-up:\n{silo.Tail()}");
            if (started.Elapsed > TimeSpan.FromSeconds(90)) throw new TimeoutException($"the silo did not become active in 90 s:\n{silo.Tail()}");
            try
            {
                await using var command = db.CreateCommand("SELECT count(*) FROM orleansmembershiptable WHERE deploymentid = $1 AND status = 3");
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ClusterId });
                if ((long)(await command.ExecuteScalarAsync())! > 0) break;
            }
            catch (PostgresException)
            {
            }

            await Task.Delay(250);
        }

        Say($"silo: active after {started.Elapsed.TotalSeconds:F1} s, pid {silo.Pid}, working set {Mb(ProcStats.StatusValue(silo.Pid, "VmRSS"))} MB");

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(client =>
        {
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = connectionString;
            });
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = ClusterId;
                o.ServiceId = ServiceId;
            });
        });
        clientHost = builder.Build();
        await clientHost.StartAsync();
        cluster = clientHost.Services.GetRequiredService<IClusterClient>();
        Say("Orleans client: connected (ADO.NET clustering on the same PostgreSQL)");
    }

    private async Task StartGatewayAsync()
    {
        var port = PostgresServer.FreePort();
        var signingKey = Convert.ToHexString(Guid.NewGuid().ToByteArray()) + Convert.ToHexString(Guid.NewGuid().ToByteArray());
        var env = new Dictionary<string, string>
        {
            ["ConnectionStrings__Billing"] = ServiceConnectionString(),
            ["Orleans__ClusterId"] = ClusterId,
            ["Orleans__ServiceId"] = ServiceId,
            ["Auth__SigningKey"] = signingKey,
            ["Logging__LogLevel__Default"] = options.SiloLogLevel,
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
        };
        var url = $"http://127.0.0.1:{port}";
        Say($"gateway: starting dotnet {Path.GetRelativePath(options.Root, options.GatewayDll!)} --urls {url}");
        gateway = ChildProcess.StartDotnet("gateway", options.GatewayDll!, ["--urls", url], env!, Path.Combine(logDirectory, "gateway.log"));

        var token = await MintTokenAsync(env);
        http = new HttpClient(new SocketsHttpHandler
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
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

        var started = Stopwatch.StartNew();
        while (true)
        {
            if (gateway.HasExited) throw new InvalidOperationException($"the gateway exited during start-up:\n{gateway.Tail()}");
            if (started.Elapsed > TimeSpan.FromSeconds(90)) throw new TimeoutException($"the gateway was not ready in 90 s:\n{gateway.Tail()}");
            try
            {
                using var response = await http.GetAsync("/health/ready");
                if (response.IsSuccessStatusCode) break;
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(250);
        }

        Say($"gateway: ready after {started.Elapsed.TotalSeconds:F1} s, pid {gateway.Pid}; service token minted with its token verb");
    }

    private async Task<string> MintTokenAsync(Dictionary<string, string> env)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(options.GatewayDll)!,
        };
        foreach (var a in new[] { options.GatewayDll!, "token", "--role", "service", "--sub", Guid.NewGuid().ToString() }) info.ArgumentList.Add(a);
        foreach (var (k, v) in env) info.Environment[k] = v;
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var token = output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.StartsWith("Bearer ", StringComparison.Ordinal) ? l[7..] : l)
            .LastOrDefault(l => l.Count(c => c == '.') == 2 && !l.Contains(' '));
        return token ?? throw new InvalidOperationException($"could not mint a token (exit {process.ExitCode}): {output}{error}");
    }

    private async Task SeedAsync(bool orleans)
    {
        var creators = Enumerable.Range(0, Math.Max(1, options.SpreadProjects / 100)).Select(_ => Guid.NewGuid()).ToArray();
        hot = (Guid.NewGuid(), Guid.NewGuid());
        spread = options.Accounts.Contains("spread")
            ? Enumerable.Range(0, options.SpreadProjects).Select(i => (Guid.NewGuid(), creators[i % creators.Length])).ToArray()
            : [];
        var started = Stopwatch.StartNew();
        if (orleans)
        {
            var price = await cluster!.GetGrain<IModelPricingGrain>(modelId).AddPrice(new ModelPriceInput(3.00m, 15.00m, "USD", DateTimeOffset.UtcNow.AddMinutes(-1)));
            if (!price.IsOk) throw new InvalidOperationException($"AddPrice: {price.Problem}");
            var users = new[] { hot.User }.Concat(spread.Length > 0 ? creators : []).ToArray();
            await Parallel.ForEachAsync(users, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (user, _) =>
                Check(await cluster.GetGrain<IUserGrain>(user).Initialize(), "user Initialize"));
            var projects = new[] { (hot, HotTopUp) }.Concat(spread.Select(s => (s, SpreadTopUp))).ToArray();
            var done = 0;
            await Parallel.ForEachAsync(projects, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (p, _) =>
            {
                var grain = cluster.GetGrain<IProjectGrain>(p.Item1.Project);
                Check(await grain.Initialize(p.Item1.User), "project Initialize");
                Check(await grain.Credit(new AccountCredit(p.Item2, HistoryReasons.TopUp, Guid.NewGuid())), "project Credit");
                if (Interlocked.Increment(ref done) % 2000 == 0) Say($"seed: {done}/{projects.Length} projects initialised and topped up");
            });
            Say($"seed: model price 3.00/15.00 USD per million tokens; {users.Length} users, {projects.Length} projects initialised and topped up through the grains in {started.Elapsed.TotalSeconds:F1} s; " +
                $"silo working set {Mb(ProcStats.StatusValue(silo!.Pid, "VmRSS"))} MB");
        }
        else
        {
            await Database.ScalarAsync<int>(db, "SELECT 1");
        }

        var all = new[] { hot }.Concat(spread).ToArray();
        await Database.SeedAccountsAsync(db, all, SpreadTopUp * 100);
        await Database.ExperimentAccountsAsync(db, all, SpreadTopUp * 100);
        Say($"seed: {all.Length} accounts in seed_project_billing and xp_project_billing (same ids)");
        if (options.Modes.Contains("db-grain"))
        {
            grainStatement = new GrainStatementBench(xp);
            await grainStatement.CreateAccountsAsync(Math.Max(1, spread.Length), SpreadTopUp);
            Say($"seed: {grainStatement.Ids.Length} accounts of its own for db-grain (created with the grains' LedgerStore)");
        }
    }

    private static void Check<T>(BillingResult<T> result, string what) where T : class
    {
        if (!result.IsOk) throw new InvalidOperationException($"{what}: {result.Problem}");
    }

    // ---------------------------------------------------------------- cases

    private Func<Random, Task<Outcome>> Call(string accounts, string path, string mode, out Func<ValueTask> cleanup, out Func<string> extra)
    {
        cleanup = () => ValueTask.CompletedTask;
        extra = () => "";
        (Guid Project, Guid User) Pick(Random rng) => accounts == "hot" ? hot : spread[rng.Next(spread.Length)];
        switch (mode)
        {
            case "seed":
                return rng => { var a = Pick(rng); return Database.SeedDeductAsync(db, a.Project, a.User, modelId); };
            case "db-single":
                return rng => { var a = Pick(rng); return Database.ExperimentSingleAsync(xp, a.Project, a.User, modelId); };
            case "db-grain":
            {
                var ids = grainStatement!.Ids;
                return rng => grainStatement.ChargeAsync(accounts == "hot" ? ids[0] : ids[rng.Next(ids.Length)], modelId);
            }
            case "db-shared":
            {
                var committer = new SharedCommitter(xp, options.ExperimentWriters);
                cleanup = () => committer.DisposeAsync();
                extra = () => $" avg_batch={committer.AverageBatch:F1}";
                return rng => { var a = Pick(rng); return committer.WriteAsync(a.Project, a.User, modelId); };
            }
        }

        if (path == "cluster")
        {
            var usage = cluster!.GetGrain<IUsageGrain>(0);
            return async rng =>
            {
                var a = Pick(rng);
                var result = await usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), a.Project, a.User, modelId, Database.InputTokens, Database.OutputTokens));
                return result.IsOk ? Outcome.Ok(result.Value!.Cost) : Outcome.Refused($"{result.Problem!.Status}: {result.Problem.Detail}");
            };
        }

        return async rng =>
        {
            var a = Pick(rng);
            var body = $$"""{"projectId":"{{a.Project}}","userId":"{{a.User}}","modelId":"{{modelId}}","inputTokens":{{Database.InputTokens}},"outputTokens":{{Database.OutputTokens}},"usageId":"{{Guid.NewGuid()}}"}""";
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            using var response = await http!.PostAsync("/v1/usage", content);
            var text = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.OK)
            {
                using var json = JsonDocument.Parse(text);
                return Outcome.Ok(json.RootElement.GetProperty("cost").GetDecimal());
            }

            var status = (int)response.StatusCode;
            return status is >= 400 and < 500 and not 408 and not 429
                ? Outcome.Refused($"HTTP {status}: {Truncate(text)}")
                : Outcome.Fault($"HTTP {status}: {Truncate(text)}");
        };
    }

    /// <summary>Runs a case; when other processes of the shared machine disturbed it, waits and runs it again (--retries).</summary>
    private async Task<double> RunCaseAsync(string accounts, string path, string mode, int clients, double? seedOps)
    {
        for (var attempt = 0; ; attempt++)
        {
            var (ops, other) = await RunCaseOnceAsync(accounts, path, mode, clients, seedOps, last: attempt >= options.Retries);
            if (other <= 30 || attempt >= options.Retries) return ops;
            Say($"  running the case again (attempt {attempt + 2} of {options.Retries + 1}) on a quieter machine");
        }
    }

    private async Task<(double Ops, double Other)> RunCaseOnceAsync(string accounts, string path, string mode, int clients, double? seedOps, bool last)
    {
        if (accounts == "spread" && spread.Length == 0) throw new InvalidOperationException("no spread accounts seeded");
        var name = $"case={accounts} path={path} mode={mode} clients={clients}";
        await WaitForQuietMachineAsync();
        Say($"start {name}: {options.WarmupSeconds} s warm-up, {options.Seconds} s measured");
        var ledgerTable = mode switch { "seed" => "seed_project_billing", "orleans" or "db-grain" => null, _ => "xp_project_billing" };
        var before = ledgerTable is null ? await Database.RealLedgerAsync(db) : await Database.SideLedgerAsync(db, ledgerTable);

        var call = Call(accounts, path, mode, out var cleanup, out var extra);
        var sampler = new CpuSampler(() => new Dictionary<string, int[]>
        {
            ["silo"] = silo is null ? [] : [silo.Pid],
            ["gw"] = gateway is null ? [] : [gateway.Pid],
            ["pg"] = postmasterPid == 0 ? [] : ProcStats.ProcessTree(postmasterPid),
            ["bench"] = [Environment.ProcessId],
        });
        Database.PgCounters? countersStart = null, countersEnd = null;
        Dictionary<string, double>? cpu = null;
        DateTime measureFrom = default, measureTo = default;
        var result = await CaseRunner.RunAsync(clients, TimeSpan.FromSeconds(options.WarmupSeconds), TimeSpan.FromSeconds(options.Seconds), call,
            onMeasureStart: () =>
            {
                countersStart = Database.CountersAsync(db, ledgerTable ?? "project_billing").GetAwaiter().GetResult();
                sampler.Start();
                measureFrom = DateTime.UtcNow;
            },
            onMeasureEnd: () =>
            {
                measureTo = DateTime.UtcNow;
                cpu = sampler.Stop();
                countersEnd = Database.CountersAsync(db, ledgerTable ?? "project_billing").GetAwaiter().GetResult();
            });
        var extraText = extra();
        await cleanup();

        // The ledger must balance, and exactly the acknowledged charges must be stored (faults may or may not be).
        var after = ledgerTable is null ? await Database.RealLedgerAsync(db) : await Database.SideLedgerAsync(db, ledgerTable);
        var stored = after.Charged - before.Charged;
        var storedCost = after.ChargedCost - before.ChargedCost;
        var balanceDrop = before.Balance - after.Balance;
        var problems = new List<string>();
        if (after.BadAccounts != 0) problems.Add($"{after.BadAccounts} account(s) with balance ≠ sum(history) or version ≠ newest seq");
        if (stored < result.AckedTotal || stored > result.AckedTotal + result.AmbiguousTotal)
            problems.Add($"{stored} charges stored but {result.AckedTotal} acknowledged (+{result.AmbiguousTotal} faults)");
        if (balanceDrop != storedCost) problems.Add($"balances fell by {balanceDrop} but stored charges cost {storedCost}");
        if (result.AmbiguousTotal == 0 && storedCost != result.AckedCostTotal) problems.Add($"stored charges cost {storedCost} but acknowledged {result.AckedCostTotal}");
        foreach (var child in new[] { silo, gateway })
        {
            if (child is { HasExited: true }) problems.Add($"the {child.Name} process died:\n{child.Tail()}");
        }

        var siloRssKb = silo is null ? null : ProcStats.StatusValue(silo.Pid, "VmRSS");
        var siloHwmKb = silo is null ? null : ProcStats.StatusValue(silo.Pid, "VmHWM");
        siloPeakKb = Math.Max(siloPeakKb, siloHwmKb ?? 0);
        // Account write statements: exact for the grains (from their rows), one per transaction for the seed, from the
        // statistics views (about a second behind) for the experiment.
        var writes = mode switch
        {
            "orleans" or "db-grain" => await OrleansWritesAsync(measureFrom, measureTo, result.Ops),
            "seed" => result.Ops,
            _ => countersEnd!.AccountWrites - countersStart!.AccountWrites,
        };
        var fsyncs = countersEnd!.WalSyncs - countersStart!.WalSyncs;
        var ratio = seedOps is > 0 ? result.OpsPerSecond / seedOps.Value : (mode == "seed" ? 1.0 : double.NaN);
        var ledger = problems.Count == 0 ? "ok" : "FAILED";
        var disturbed = cpu!["other"] > 30;
        if (disturbed) Say($"  NOTE: other processes used {cpu["other"]:F0}% of a core during this case: its figures are disturbed");
        var line = $"bench case={accounts} path={path} mode={mode} clients={clients} ops_per_s={result.OpsPerSecond:F0} " +
                   $"p50_ms={result.P50Ms:F2} p99_ms={result.P99Ms:F2} errors={result.Errors} ratio={ratio:F2} " +
                   $"max_ms={result.MaxMs:F1} writes_per_s={writes / result.Seconds:F0} ops_per_write={Div(result.Ops, writes):F2} " +
                   $"fsyncs_per_s={fsyncs / result.Seconds:F0} ops_per_fsync={Div(result.Ops, fsyncs):F1} " +
                   $"cpu_silo={cpu!["silo"]:F0}% cpu_gw={cpu["gw"]:F0}% cpu_pg={cpu["pg"]:F0}% cpu_bench={cpu["bench"]:F0}% cpu_other={cpu["other"]:F0}% cpu_machine={cpu["machine"]:F0}% " +
                   $"silo_ws_mb={Mb(siloRssKb)} silo_peak_mb={Mb(siloHwmKb)}{extraText} ledger={ledger}";
        Console.WriteLine(disturbed && !last && problems.Count == 0 ? "(disturbed, not counted) " + line : line);
        if (result.ErrorSamples.Count > 0) Say($"  errors seen: {string.Join(" | ", result.ErrorSamples.Select(Truncate))}");
        if (problems.Count > 0)
        {
            failed = true;
            Console.WriteLine($"FAILED {name}: {string.Join("; ", problems)}");
        }

        Say($"end {name}: {result.Ops} ops measured, {result.AckedTotal} acknowledged in all, ledger {ledger} ({after.HistoryRows} history rows)");
        if (disturbed && !last && problems.Count == 0) return (result.OpsPerSecond, cpu["other"]);
        results.Add((line, new CaseSummary(accounts, path, mode, clients, result.OpsPerSecond, result.P50Ms, result.P99Ms, result.Errors, ratio,
            cpu["silo"], cpu["gw"], cpu["pg"], cpu["bench"], cpu["other"], Div(result.Ops, writes), Div(result.Ops, fsyncs), ledger)));
        return (result.OpsPerSecond, problems.Count > 0 ? 0 : cpu["other"]);
    }

    /// <summary>The machine may be shared: wait (up to --quiet-wait s) until other processes leave it idle, so that a case measures only itself.</summary>
    private async Task WaitForQuietMachineAsync()
    {
        var waited = Stopwatch.StartNew();
        var warned = false;
        while (waited.Elapsed < TimeSpan.FromSeconds(options.QuietWaitSeconds))
        {
            var a = ProcStats.MachineCpu();
            await Task.Delay(1000);
            var b = ProcStats.MachineCpu();
            var busy = 100 * (b.Busy - a.Busy) / Math.Max(0.01, (b.Total - a.Total) / Environment.ProcessorCount);
            if (busy < 25) return;
            if (!warned) Say($"waiting for a quiet machine: {busy:F0}% of one core busy outside the bench's cases");
            warned = true;
        }

        Say("WARNING: the machine stayed busy; measuring anyway (see cpu_other)");
    }

    private void PrintTable()
    {
        Console.WriteLine();
        Console.WriteLine($"Results ({DateTime.Now:yyyy-MM-dd}, {Environment.ProcessorCount} cores, {options.Seconds} s per case after {options.WarmupSeconds} s warm-up; cpu in % of one core)");
        Console.WriteLine("| accounts | path | mode | clients | ops/s | p50 ms | p99 ms | errors | ratio | ops/write | ops/fsync | cpu silo | cpu gw | cpu pg | cpu bench | cpu other | ledger |");
        Console.WriteLine("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var (_, s) in results)
        {
            Console.WriteLine($"| {s.Accounts} | {s.Path} | {s.Mode} | {s.Clients} | {s.OpsPerSecond:F0} | {s.P50:F2} | {s.P99:F2} | {s.Errors} | {s.Ratio:F2} | {s.OpsPerWrite:F2} | {s.OpsPerFsync:F1} | " +
                              $"{s.CpuSilo:F0} | {s.CpuGw:F0} | {s.CpuPg:F0} | {s.CpuBench:F0} | {s.CpuOther:F0} | {s.Ledger} |");
        }

        if (silo is not null)
            Console.WriteLine($"silo peak working set (VmHWM): {siloPeakKb / 1024} MB; now {Mb(ProcStats.StatusValue(silo.Pid, "VmRSS"))} MB with {1 + spread.Length} project accounts activated");
    }

    private async Task<long> OrleansWritesAsync(DateTime from, DateTime to, long ops)
    {
        var (rows, statements) = await Database.GrainWritesAsync(db, from, to);
        return rows == 0 ? 0 : (long)Math.Round(ops * (double)statements / rows);
    }

    private static double Div(long a, long b) => b == 0 ? double.NaN : (double)a / b;

    private static string Mb(long? kb) => kb is null ? "?" : (kb.Value / 1024).ToString();

    private static string Truncate(string s) => s.Length > 300 ? s[..300] + "…" : s;

    private sealed record CaseSummary(string Accounts, string Path, string Mode, int Clients, double OpsPerSecond, double P50, double P99, long Errors,
        double Ratio, double CpuSilo, double CpuGw, double CpuPg, double CpuBench, double CpuOther, double OpsPerWrite, double OpsPerFsync, string Ledger);
}
