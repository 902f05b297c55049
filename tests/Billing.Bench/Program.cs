// Billing.Bench: throughput and latency of recording AI usage, Orleans against the seed's lock-based transaction.
// The run, step by step; each step's code lives in the folder of its role:
//   Processes/   PostgreSQL, the silo and gateway child processes, the bench's Orleans and HTTP clients
//   Seeding/     the model price, users and projects; the seed's and the DB-only experiment's tables and accounts
//   Workload/    what a caller does once per mode: the seed's transaction, the grains' ledger statement, cluster, HTTP
//   Measurement/ closed-loop callers and latency, CPU and memory from /proc, PostgreSQL's counters, the ledger checks
//   Report/      one line per case, the table, the verdict (README.md, "Benchmark", reads this format)
using System.Globalization;
using Billing.Bench;
using Billing.Bench.Measurement;
using Billing.Bench.Processes;
using Billing.Bench.Report;
using Billing.Bench.Seeding;
using static Billing.Bench.Report.Progress;

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

using var killChildrenOnExit = BenchServices.KillChildrenOnExit();
ThreadPool.GetMinThreads(out var minWorkers, out var minIo);
ThreadPool.SetMinThreads(Math.Max(minWorkers, 32), minIo);
try
{
    return await RunAsync(options);
}
finally
{
    BenchServices.KillChildren();
}

static async Task<int> RunAsync(BenchOptions options)
{
    var runId = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss");
    var logDirectory = Path.Combine(options.Root, ".artifacts", "bench", runId);
    Directory.CreateDirectory(logDirectory);
    Say($"bench run {runId}: seconds={options.Seconds} warmup={options.WarmupSeconds} clients={string.Join(',', options.Clients)} " +
        $"paths={string.Join(',', options.Paths)} accounts={string.Join(',', options.Accounts)} modes={string.Join(',', options.Modes)} " +
        $"projects={options.SpreadProjects} cores={Environment.ProcessorCount}; logs in {logDirectory}");

    // 1. Processes: the database; the silos (and gateway) per silo count, the first of which also seeds the accounts.
    await using var database = await BenchDatabase.StartAsync(options);
    if (options.Summary) return await UsageSummaryBench.RunAsync(options, database);
    if (options.DropSummaryIndex) await UsageSummaryBench.DropIndexesAsync(database);
    if (options.ExperimentSql is { } schemaExperiment) await BenchDatabase.ExecuteAsync(database.Bench, schemaExperiment);
    var report = new BenchReport(options);
    BenchAccounts? accounts = null;
    var siloCounts = options.Modes.Any(m => m is "orleans" or "hold" or "refused" or "refused-hold") ? options.Silos.Cast<int?>().ToArray() : [null];
    foreach (var siloCount in siloCounts)
    {
        await using var services = siloCount is { } count ? await BenchServices.StartAsync(options, database, runId, logDirectory, count) : null;

        // 2. Seeding (once; later silo counts activate the same accounts from the database before their cases).
        if (accounts is null)
        {
            accounts = await BenchAccounts.SeedAsync(options, database, services);
            await database.SettleAfterSeedingAsync();
        }
        else if (services is not null) await accounts.ActivateAsync(services);

        // 3–4. Workload and measurement: per accounts and clients, the seed first (the ratios' baseline), then the
        // others; --repeat N alternates them N times, so each ratio compares runs a minute apart.
        var cases = new CaseMeasurement(options, database, services, accounts, report);
        foreach (var kind in options.Accounts)
        {
            foreach (var clients in options.Clients)
            {
                for (var run = 1; run <= options.Repeat; run++)
                {
                    if (options.Repeat > 1) Say($"run {run} of {options.Repeat}: accounts={kind} clients={clients} silos={siloCount}");
                    Billing.Bench.Measurement.CaseResult? seed = null;
                    if (options.Modes.Contains("seed")) seed = await cases.RunAsync(kind, "npgsql", "seed", clients, null);
                    foreach (var experiment in new[] { "db-single", "db-shared", "db-grain" })
                    {
                        if (options.Modes.Contains(experiment)) await cases.RunAsync(kind, "npgsql", experiment, clients, seed);
                    }

                    if (services is null) continue;
                    if (options.Modes.Contains("orleans"))
                        foreach (var path in options.Paths) await cases.RunAsync(kind, path, "orleans", clients, seed);
                    if (options.Modes.Contains("hold")) await cases.RunAsync(kind, "cluster", "hold", clients, seed);
                    foreach (var refused in new[] { "refused", "refused-hold" })
                    {
                        if (options.Modes.Contains(refused)) await cases.RunAsync(kind, "cluster", refused, clients, seed);
                    }
                }
            }
        }

        if (services is not null) report.SiloMemory(services.SiloCount, services.SiloRssKb, services.SiloStartRssKb, 1 + accounts.Spread.Length);
    }

    // 5. Report.
    report.PrintTable();
    report.PrintVerdict();
    return report.Failed ? 1 : 0;
}
