using System.Diagnostics;
using System.Globalization;
using Billing.Bank;
using Billing.Testing;
using Npgsql;

// The bank test: concurrent clients move money through 2–3 silos (and the gateway when it is built) while silos are
// killed with SIGKILL, PostgreSQL restarts and client connections drop; every unknown outcome is retried with its id
// until it has one answer; then the invariants are checked in SQL. Exit 0 = no violation. See README.md, "The bank test".
var options = BankOptions.Parse(args);
Console.WriteLine($"bank: seed {options.Seed} (replay: --seed {options.Seed} --seconds {options.Seconds} --silos {options.Silos} --workers {options.Workers} --transport {options.Transport})");
// ChildProcess kills its children at exit by itself; Ctrl-C must not leave them behind either.
Console.CancelKeyPress += (_, _) => ChildProcess.KillAll();
var hardStop = Stopwatch.StartNew();
var violations = new List<string>();
void Violation(string v)
{
    lock (violations)
    {
        violations.Add(v);
        if (violations.Count <= 50) Console.WriteLine("VIOLATION " + v);
    }
}

void Info(string s) => Console.WriteLine($"bank [{hardStop.Elapsed.TotalSeconds,6:F1}s] {s}");

var stats = new Stats();
var exit = 1;
try
{
    exit = await Bank.Run(options, stats, Violation, Info);
}
catch (Exception e)
{
    Violation("bank aborted: " + e);
}
finally
{
    ChildProcess.KillAll();
}

Console.WriteLine($"""
    bank summary (seed {options.Seed}, {options.Seconds}s, transport {stats.TransportName}):
      operations attempted        {stats.Attempted}
      acknowledged (2xx)          {stats.Acknowledged}
      refused (402)               {stats.Refused}
      not found (404) / conflict  {stats.NotFound} / {stats.Conflicts}
      unknown then resolved       {stats.UnknownThenResolved}
      unresolved                  {stats.Unresolved}
      attempts / unknown attempts {stats.Attempts} / {stats.UnknownAttempts} (dropped on purpose {stats.DroppedOnPurpose})
      slowest attempt             {stats.MaxAttemptMs} ms, hung past timeout {stats.Hung}
      replayed ids                {stats.Replayed} (mismatches {stats.ReplayMismatches})
      holds placed / refused      {stats.HoldsPlaced} / {stats.HoldsRefused}
      captured (above the hold)   {stats.Captures} ({stats.CapturesAboveHold}), shortfalls {stats.Shortfalls}, late {stats.LateCaptures}, late refused {stats.LateCapturesRefused}
      voided / abandoned          {stats.Voids} / {stats.Abandoned}; 409 probes {stats.ConflictProbes}, raced capture retries {stats.RacedRetries}
      grants given / expired      {stats.GrantsGiven} / {stats.GrantsExpired}
      H1 samples during the run   {stats.H1Samples}
      faults injected             silo kill -9 + restart {stats.SilosKilled}, PostgreSQL restarts {stats.PostgresRestarts}, connection drops {stats.ConnectionDrops}
      violations                  {violations.Count}
      logs                        {options.LogDir}
    """);
if (violations.Count > 0)
{
    // All of them (the console shows the first 50).
    try
    {
        Directory.CreateDirectory(options.LogDir);
        File.WriteAllLines(Path.Combine(options.LogDir, "violations.txt"), violations);
    }
    catch (IOException)
    {
    }
}

Console.WriteLine(violations.Count == 0 && exit == 0 ? "bank: PASS" : $"bank: FAIL ({violations.Count} violations)");
return violations.Count == 0 && exit == 0 ? 0 : 1;

namespace Billing.Bank
{
    public sealed record BankOptions(int Seed, int Seconds, int Silos, int Workers, string Transport, string SiloDll, string GatewayDll, string LogDir, TimeSpan RequestTimeout)
    {
        public static BankOptions Parse(string[] args)
        {
            string? Get(string name)
            {
                var i = Array.IndexOf(args, name);
                return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
            }

            var root = RepoRoot();
            var config = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
            var seed = Get("--seed") is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : Random.Shared.Next(1, 1_000_000);
            var logs = Get("--logs") ?? Path.Combine(Path.GetTempPath(), $"billing-bank-{seed}-{Environment.ProcessId}");
            return new BankOptions(
                seed,
                int.Parse(Get("--seconds") ?? "60", CultureInfo.InvariantCulture),
                Math.Clamp(int.Parse(Get("--silos") ?? "2", CultureInfo.InvariantCulture), 2, 3),
                int.Parse(Get("--workers") ?? "8", CultureInfo.InvariantCulture),
                // http unless told otherwise: a gateway that cannot start fails the run (auto, its silent fallback to an
                // Orleans client, is only on request and says so loudly).
                Get("--transport") ?? "http",
                Get("--silo-dll") ?? Path.Combine(root, "Silo", "bin", config, "net10.0", "Billing.Silo.dll"),
                Get("--gateway-dll") ?? Path.Combine(root, "Client", "bin", config, "net10.0", "Billing.Client.dll"),
                logs,
                TimeSpan.FromSeconds(int.Parse(Get("--request-timeout") ?? "10", CultureInfo.InvariantCulture)));
        }

        public static string RepoRoot()
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Billing.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("Billing.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static class Bank
    {
        public static async Task<int> Run(BankOptions o, Stats stats, Action<string> violation, Action<string> info)
        {
            Directory.CreateDirectory(o.LogDir);
            if (!File.Exists(o.SiloDll)) throw new FileNotFoundException($"silo not built: {o.SiloDll} (dotnet build Billing.sln -c Release)");
            if (o.Transport is not ("http" or "orleans" or "auto"))
                throw new ArgumentException($"--transport {o.Transport}: expected http (default), orleans or auto");
            if (o.Transport == "http" && !File.Exists(o.GatewayDll))
                throw new FileNotFoundException($"gateway not built: {o.GatewayDll} (dotnet build Billing.sln -c Release; --transport orleans runs without it)");
            var rng = new Random(o.Seed);
            var end = DateTime.UtcNow.AddSeconds(o.Seconds);

            // A throwaway PostgreSQL. The password is ignored (trust auth) but lets us prove no log prints it.
            var cs = await PostgresServer.Instance.CreateDatabaseAsync("bank");
            var password = $"bank-secret-{o.Seed}-{Guid.NewGuid():N}";
            var childCs = new NpgsqlConnectionStringBuilder(cs) { Password = password, Timeout = 5, CommandTimeout = 10 }.ConnectionString;
            var signingKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(48));
            var clusterId = $"bank-{o.Seed}";
            const string serviceId = "billing-bank";
            info($"PostgreSQL on 127.0.0.1:{PostgresServer.Instance.Port}, database ready; logs in {o.LogDir}");

            // The model and its price (per million tokens), in effect since an hour ago.
            var model = Guid.NewGuid();
            await using (var db = new NpgsqlConnection(cs))
            {
                await db.OpenAsync();
                await using var cmd = new NpgsqlCommand("""
                    INSERT INTO model_pricing (uid, model_version_id, input_price_per_million, output_price_per_million, currency, effective_from, created_at)
                    VALUES ($1, $2, $3, $4, 'USD', now() - interval '1 hour', now())
                    """, db);
                cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = Guid.NewGuid() });
                cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = model });
                cmd.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = HoldAgent.InputPrice });
                cmd.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = HoldAgent.OutputPrice });
                await cmd.ExecuteNonQueryAsync();
            }

            // Silos.
            var siloEnvironment = new Dictionary<string, string?>(SiloEnvironmentFile.Read(o.SiloDll).Select(v => KeyValuePair.Create(v.Key, (string?)v.Value)))
            {
                ["ConnectionStrings__Billing"] = childCs,
                ["Orleans__ClusterId"] = clusterId,
                ["Orleans__ServiceId"] = serviceId,
                ["Logging__Console__FormatterName"] = "simple",
            };
            var silos = new List<(ChildProcess Child, int Dashboard)>();
            for (var i = 0; i < o.Silos; i++) silos.Add(StartSilo(o, i, siloEnvironment));

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
            foreach (var (child, dashboard) in silos) await WaitReady(http, child, dashboard, TimeSpan.FromSeconds(90), info);

            // The gateway (--transport http, the default: it must start); Orleans clients only with --transport orleans;
            // --transport auto falls back to an Orleans client when the gateway does not start, and says so.
            ITransport? transport = null;
            ChildProcess? gateway = null;
            var useGateway = o.Transport == "http" || (o.Transport == "auto" && File.Exists(o.GatewayDll));
            if (useGateway)
            {
                var port = PostgresServer.FreePort();
                gateway = ChildProcess.StartDotnet("gateway", o.GatewayDll, ["--urls", $"http://127.0.0.1:{port}"], new Dictionary<string, string?>
                {
                    ["ConnectionStrings__Billing"] = childCs,
                    ["Orleans__ClusterId"] = clusterId,
                    ["Orleans__ServiceId"] = serviceId,
                    ["Auth__SigningKey"] = signingKey,
                    ["Logging__Console__FormatterName"] = "simple",
                }, Path.Combine(o.LogDir, "gateway.log"));
                if (await WaitReady(http, gateway, port, TimeSpan.FromSeconds(90), info, required: o.Transport == "http"))
                {
                    transport = new HttpTransport(new Uri($"http://127.0.0.1:{port}"), Jwt.Mint(signingKey, "service", Guid.NewGuid(), TimeSpan.FromHours(2)),
                        Jwt.Mint(signingKey, "admin", Guid.NewGuid(), TimeSpan.FromHours(2)));
                }
                else
                {
                    info("WARNING: --transport auto: the gateway did not become ready; FALLING BACK to an Orleans client (see gateway.log)");
                    gateway.Kill();
                }
            }

            transport ??= await OrleansTransport.Connect(cs, clusterId, serviceId, CancellationToken.None);
            stats.TransportName = transport.Name;
            info($"transport: {transport.Name}");

            var runner = new Runner(() => transport, model, o.RequestTimeout, stats, violation);
            try
            {
                // Accounts: users, and projects of a few creators (several per creator: exactly one first-project credit).
                var users = Enumerable.Range(0, 10).Select(_ => Guid.NewGuid()).ToArray();
                var projects = Enumerable.Range(0, 16).Select(i => (Id: Guid.NewGuid(), Creator: users[i % 5])).ToArray();
                var knownProjects = new System.Collections.Concurrent.ConcurrentDictionary<Guid, Guid>();
                var opId = 0;
                var setupUntil = DateTime.UtcNow.AddSeconds(60);
                await Task.WhenAll(users.Select(u => runner.Execute(new Op { Id = Interlocked.Increment(ref opId), Type = OpType.InitUser, Account = u }, setupUntil, new Random(o.Seed), false)));
                // Half the projects now, all at once (same creators racing for the first-project credit); the rest during the run.
                await Task.WhenAll(projects.Take(8).Select(async p =>
                {
                    var op = new Op { Id = Interlocked.Increment(ref opId), Type = OpType.InitProject, Account = p.Id, User = p.Creator };
                    await runner.Execute(op, setupUntil, new Random(o.Seed), false);
                    if (op.Answer?.Kind == OutcomeKind.Ok) knownProjects[p.Id] = p.Creator;
                }));
                info($"setup: {users.Length} users, {knownProjects.Count} projects initialised");
                var ghostProject = Guid.NewGuid(); // never initialised: usage on it must be a clean 404

                // Faults, on a schedule drawn from the seed: each kind at least once.
                var kinds = new[] { "kill-silo", "restart-postgres", "drop-connections", "kill-silo", "restart-postgres", "drop-connections" }
                    .Take(Math.Max(3, Math.Min(6, o.Seconds / 12))).OrderBy(_ => rng.Next()).ToArray();
                // Spread over the load as it really runs (--seconds counts from the start, setup included), so that each kind happens.
                var started = DateTime.UtcNow;
                var loadSeconds = Math.Max(5, (end - started).TotalSeconds);
                var faultTimes = kinds.Select((_, i) => TimeSpan.FromSeconds(loadSeconds * (0.1 + 0.7 * i / kinds.Length) + rng.NextDouble() * 2)).ToArray();
                var faults = Task.Run(async () =>
                {
                    for (var i = 0; i < kinds.Length; i++)
                    {
                        var wait = started + faultTimes[i] - DateTime.UtcNow;
                        if (wait > TimeSpan.Zero) await Task.Delay(wait);
                        if (DateTime.UtcNow >= end) break;
                        try
                        {
                            switch (kinds[i])
                            {
                                case "kill-silo":
                                    var victim = rng.Next(silos.Count);
                                    info($"FAULT kill -9 silo{victim} (pid {silos[victim].Child.Pid})");
                                    silos[victim].Child.Dispose(); // SIGKILL, then its log is let go
                                    Interlocked.Increment(ref stats.SilosKilled);
                                    await Task.Delay(2000 + rng.Next(2000));
                                    silos[victim] = StartSilo(o, victim, siloEnvironment);
                                    await WaitReady(http, silos[victim].Child, silos[victim].Dashboard, TimeSpan.FromSeconds(90), info);
                                    break;
                                case "restart-postgres":
                                    info("FAULT PostgreSQL restart (pg_ctl restart -m fast)");
                                    await Task.Run(() => PostgresServer.Instance.Restart());
                                    Interlocked.Increment(ref stats.PostgresRestarts);
                                    info("PostgreSQL is back");
                                    break;
                                case "drop-connections":
                                    info("FAULT dropping every client connection");
                                    transport.DropConnections();
                                    Interlocked.Increment(ref stats.ConnectionDrops);
                                    break;
                            }
                        }
                        catch (Exception e)
                        {
                            violation($"fault {kinds[i]} could not be injected/recovered: {e.Message}");
                        }
                    }
                });

                // H1 while it runs: every few seconds, no account's active holds exceed what it has (unless a grant left under them).
                using var sampling = new CancellationTokenSource();
                var sampler = Checks.SampleH1(cs, TimeSpan.FromSeconds(2), stats, violation, sampling.Token);

                // Workers: each with its own seeded generator; each op retried with its id until answered.
                var workers = Enumerable.Range(0, o.Workers).Select(w => Task.Run(async () =>
                {
                    var r = new Random(o.Seed * 1009 + w);
                    for (var n = 0; n < 100_000 && DateTime.UtcNow < end; n++)
                    {
                        var roll = r.Next(100);
                        var giveUp = DateTime.UtcNow.AddSeconds(30);
                        var user = users[r.Next(users.Length)];
                        var known = knownProjects.Keys.ToArray();
                        var drop = r.Next(100) < 4;
                        Op op;
                        if (roll < 38 && known.Length > 0)
                        {
                            var project = r.Next(100) < 2 ? ghostProject : known[r.Next(known.Length)];
                            op = new Op { Id = Interlocked.Increment(ref opId), Type = OpType.Usage, Project = project, User = user, Input = r.Next(0, 300_000), Output = r.Next(0, 80_000) };
                        }
                        else if (roll < 54)
                        {
                            op = new Op { Id = Interlocked.Increment(ref opId), Type = OpType.PersonalUsage, User = user, Input = r.Next(0, 300_000), Output = r.Next(0, 80_000) };
                        }
                        else if (roll < 66)
                        {
                            var toProject = r.Next(2) == 0 && known.Length > 0;
                            op = new Op
                            {
                                Id = Interlocked.Increment(ref opId), Type = OpType.TopUp, Kind = toProject ? AccountKind.Project : AccountKind.User,
                                Account = toProject ? known[r.Next(known.Length)] : user, Amount = r.Next(1, 30_000) / 10_000m,
                            };
                        }
                        else if (roll < 84)
                        {
                            // An agent's call with a hold: a project hold (falls back to the user), a personal one, or one on a ghost project (404).
                            var kind = r.Next(100);
                            Guid? project = kind < 70 && known.Length > 0 ? known[r.Next(known.Length)] : kind < 72 ? ghostProject : null;
                            await HoldAgent.Run(runner, r, () => Interlocked.Increment(ref opId), user, project, o.RequestTimeout, stats, violation);
                            continue;
                        }
                        else if (roll < 88)
                        {
                            // Expiring credit: most grants lapse within seconds, while charges and captures draw on them.
                            var toProject = r.Next(2) == 0 && known.Length > 0;
                            op = HoldAgent.NewGrant(r, Interlocked.Increment(ref opId), toProject ? AccountKind.Project : AccountKind.User, toProject ? known[r.Next(known.Length)] : user);
                        }
                        else if (roll < 92)
                        {
                            // Re-send an answered usage id or capture: the same answer must come back and nothing more is charged.
                            var old = runner.All.Where(x => x.Type is OpType.Usage or OpType.PersonalUsage && x.Answer?.Kind is OutcomeKind.Ok or OutcomeKind.Refused
                                || x.Type == OpType.CaptureHold && x.Expect is null && x.Answer?.Kind == OutcomeKind.Ok).Take(200).ToArray();
                            if (old.Length == 0) continue;
                            var first = old[r.Next(old.Length)];
                            var again = await runner.Attempt(first, o.RequestTimeout);
                            Interlocked.Increment(ref stats.Replayed);
                            if (first.Type == OpType.CaptureHold) HoldAgent.CompareCapture(first, again, stats, violation, live: true);
                            else Compare(first, again, stats, violation, live: true);
                            continue;
                        }
                        else
                        {
                            var p = projects[r.Next(projects.Length)];
                            op = new Op { Id = Interlocked.Increment(ref opId), Type = OpType.InitProject, Account = p.Id, User = p.Creator };
                        }

                        await runner.Execute(op, giveUp, r, drop);
                        if (op.Type == OpType.Grant && op.Answer?.Kind == OutcomeKind.Ok) Interlocked.Increment(ref stats.GrantsGiven);
                        if (op.Type == OpType.InitProject && op.Answer?.Kind == OutcomeKind.Ok) knownProjects[op.Account] = op.User;
                    }
                })).ToArray();
                await Task.WhenAll(workers);
                await faults;
                info($"load finished: {stats.Attempted} operations, {runner.Pending.Count} waiting for an answer");

                // Recovery: every silo up, then every unknown outcome retried with its id until it has one answer.
                for (var i = 0; i < silos.Count; i++)
                {
                    if (silos[i].Child.HasExited)
                    {
                        silos[i].Child.Dispose();
                        silos[i] = StartSilo(o, i, siloEnvironment);
                    }

                    await WaitReady(http, silos[i].Child, silos[i].Dashboard, TimeSpan.FromSeconds(90), info);
                }

                var resolveUntil = DateTime.UtcNow.AddSeconds(90);
                while (runner.Pending.TryDequeue(out var op))
                {
                    if (DateTime.UtcNow >= resolveUntil)
                    {
                        runner.Pending.Enqueue(op);
                        break;
                    }

                    await runner.Execute(op, resolveUntil, new Random(op.Id), false);
                }

                // Initialise every project, so that "exactly one first-project credit per creator" is decided for all.
                foreach (var p in projects)
                {
                    var op = new Op { Id = Interlocked.Increment(ref opId), Type = OpType.InitProject, Account = p.Id, User = p.Creator };
                    await runner.Execute(op, DateTime.UtcNow.AddSeconds(30), new Random(op.Id), false);
                }

                foreach (var op in runner.Pending)
                {
                    Interlocked.Increment(ref stats.Unresolved);
                    violation($"no definite answer after recovery: {op}");
                }

                // Every answered usage id, placed hold and capture, sent again: exactly one answer per id. (Not a refused
                // placement or late capture: a refusal of a hold stores no answer, so a retry with money there now succeeds.)
                var replay = runner.All.Where(x => x.Type is OpType.Usage or OpType.PersonalUsage && x.Answer?.Kind is OutcomeKind.Ok or OutcomeKind.Refused
                    || x.Type is OpType.PlaceHold or OpType.CaptureHold && x.Expect is null && x.Answer?.Kind == OutcomeKind.Ok).ToArray();
                var replayUntil = DateTime.UtcNow.AddSeconds(60);
                await Parallel.ForEachAsync(replay, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (op, _) =>
                {
                    if (DateTime.UtcNow >= replayUntil) return;
                    var again = await runner.Attempt(op, o.RequestTimeout);
                    Interlocked.Increment(ref stats.Replayed);
                    switch (op.Type)
                    {
                        case OpType.PlaceHold: HoldAgent.ComparePlacement(op, again, stats, violation); break;
                        case OpType.CaptureHold: HoldAgent.CompareCapture(op, again, stats, violation, live: false); break;
                        default: Compare(op, again, stats, violation, live: false); break;
                    }
                });
                info($"replayed {stats.Replayed} answered usage ids, holds and captures");
                sampling.Cancel();
                await sampler;

                // Time ends every hold and every expiring grant by itself, with nobody calling (H2; G2).
                await Checks.WaitForExpiries(cs, TimeSpan.FromSeconds(60), violation, info);
                await Checks.Run(cs, runner.All.ToArray(), stats, violation, info);
            }
            finally
            {
                await transport.DisposeAsync();
                gateway?.Dispose();
                foreach (var (child, _) in silos) child.Dispose();
            }

            // Secrets never reach a log: no connection-string password, no token, no signing key.
            foreach (var file in Directory.GetFiles(o.LogDir, "*.log"))
            {
                var text = await File.ReadAllTextAsync(file);
                foreach (var (what, needle) in new[] { ("a JWT (eyJ…)", "eyJ"), ("the database password", password), ("the signing key", signingKey) })
                {
                    if (text.Contains(needle, StringComparison.OrdinalIgnoreCase)) violation($"{Path.GetFileName(file)} contains {what}");
                }

                // "Password=" followed by anything but Orleans' redaction marker (its ADO.NET providers log "Password=<--SNIP-->").
                if (System.Text.RegularExpressions.Regex.IsMatch(text, "Password=(?!<--SNIP-->)", System.Text.RegularExpressions.RegexOptions.IgnoreCase))
                    violation($"{Path.GetFileName(file)} contains a connection string password");
            }

            return 0;
        }

        private static void Compare(Op op, Outcome again, Stats stats, Action<string> violation, bool live)
        {
            if (!again.Definite)
            {
                if (!live) violation($"replay of an answered usage id after recovery got no answer: {again} for {op}");
                return;
            }

            var a = op.Answer!;
            var same = again.Kind == a.Kind && (a.Kind == OutcomeKind.Ok
                ? again.Cost == a.Cost && again.PaidBy == a.PaidBy && again.BalanceAfter == a.BalanceAfter
                : again.BillingErrorId == a.BillingErrorId);
            if (!same)
            {
                Interlocked.Increment(ref stats.ReplayMismatches);
                violation($"usage id answered twice differently: first {a}, again {again} ({op})");
            }
        }

        /// <summary>Starts (or restarts) silo <paramref name="index"/> on fresh loopback ports, appending to its one log; returns it and its web (dashboard/health) port.</summary>
        private static (ChildProcess Child, int Dashboard) StartSilo(BankOptions o, int index, IReadOnlyDictionary<string, string?> environment)
        {
            var dashboard = PostgresServer.FreePort();
            var ports = new Dictionary<string, string?>(environment)
            {
                ["Orleans__SiloPort"] = PostgresServer.FreePort().ToString(CultureInfo.InvariantCulture),
                ["Orleans__GatewayPort"] = PostgresServer.FreePort().ToString(CultureInfo.InvariantCulture),
                ["Orleans__DashboardPort"] = dashboard.ToString(CultureInfo.InvariantCulture),
            };
            var child = ChildProcess.StartDotnet($"silo{index}", o.SiloDll, ["--urls", $"http://127.0.0.1:{dashboard}"], ports,
                Path.Combine(o.LogDir, $"silo{index}.log"));
            return (child, dashboard);
        }

        private static async Task<bool> WaitReady(HttpClient http, ChildProcess child, int port, TimeSpan timeout, Action<string> info, bool required = true)
        {
            var until = DateTime.UtcNow + timeout;
            while (DateTime.UtcNow < until)
            {
                if (child.HasExited) break;
                try
                {
                    using var response = await http.GetAsync($"http://127.0.0.1:{port}/health/ready");
                    if (response.IsSuccessStatusCode)
                    {
                        info($"{child.Name} ready on 127.0.0.1:{port} (pid {child.Pid})");
                        return true;
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                }

                await Task.Delay(500);
            }

            if (required) throw new TimeoutException($"{child.Name} not ready after {timeout.TotalSeconds}s (running: {!child.HasExited}); see {child.LogPath}");
            return false;
        }
    }
}
