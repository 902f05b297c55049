using Billing.Bench.Processes;
using Billing.Bench.Report;
using Billing.Bench.Seeding;
using Billing.Bench.Workload;
using Billing.Testing;
using static Billing.Bench.Report.Progress;

namespace Billing.Bench.Measurement;

/// <summary>Everything measured in one case: the callers' result, CPU per process, writes, fsyncs, memory, and what the ledger checks found.</summary>
internal sealed record CaseFigures(
    string Accounts, string Path, string Mode, int Clients, int Silos, CaseResult Result, IReadOnlyDictionary<string, double> Cpu,
    long Writes, long Fsyncs, long? SiloRssKb, long? SiloHwmKb, string Extra, IReadOnlyList<string> Problems, long HistoryRows)
{
    public string Name => $"case={Accounts} path={Path} mode={Mode} clients={Clients} silos={Silos}";
}

/// <summary>
/// Runs a case and measures it: CPU of the silo, gateway, PostgreSQL and bench from /proc, account writes and WAL
/// flushes from PostgreSQL's statistics, the silo's memory, and the ledger before and after.
/// </summary>
internal sealed class CaseMeasurement(BenchOptions options, BenchDatabase database, BenchServices? services, BenchAccounts seeded, BenchReport report)
{
    /// <summary>Runs a case; when other processes of the shared machine disturbed it, waits and runs it again (--retries). Returns its result.</summary>
    public async Task<CaseResult> RunAsync(string accounts, string path, string mode, int clients, CaseResult? seed)
    {
        for (var attempt = 0; ; attempt++)
        {
            var last = attempt >= options.Retries;
            var figures = await RunOnceAsync(accounts, path, mode, clients);
            var other = report.Case(figures, seed, last);
            if (other <= 30 || last) return figures.Result;
            Say($"  running the case again (attempt {attempt + 2} of {options.Retries + 1}) on a quieter machine");
        }
    }

    private async Task<CaseFigures> RunOnceAsync(string accounts, string path, string mode, int clients)
    {
        if (accounts == "spread" && seeded.Spread.Length == 0) throw new InvalidOperationException("no spread accounts seeded");
        var db = database.Bench;
        await QuietMachine.WaitAsync(options.QuietWaitSeconds);
        Say($"start case={accounts} path={path} mode={mode} clients={clients}: {options.WarmupSeconds} s warm-up, {options.Seconds} s measured");
        // The grains' tables (orleans, db-grain) get the full ledger check; the seed's and the experiment's, theirs.
        var ledgerTable = mode switch { "seed" => "seed_project_billing", "orleans" or "hold" or "refused" or "refused-hold" or "db-grain" => null, _ => ExperimentTables.AccountTable };
        var before = await LedgerAsync(ledgerTable);

        var workload = CaseWorkload.For(accounts, path, mode, options, database, services, seeded);
        var sampler = new CpuSampler(() => new Dictionary<string, int[]>
        {
            ["silo"] = services is null ? [] : services.SiloPids,
            ["gw"] = services?.GatewayPid is { } gateway ? [gateway] : [],
            ["pg"] = database.PostmasterPid == 0 ? [] : ProcStats.ProcessTree(database.PostmasterPid),
            ["bench"] = [Environment.ProcessId],
        });
        PgCounters? countersStart = null, countersEnd = null;
        Dictionary<string, double>? cpu = null;
        DateTime measureFrom = default, measureTo = default;
        var result = await CaseRunner.RunAsync(clients, TimeSpan.FromSeconds(options.WarmupSeconds), TimeSpan.FromSeconds(options.Seconds), workload.Call,
            onMeasureStart: () =>
            {
                countersStart = PgCounters.CountersAsync(db, ledgerTable ?? "project_billing").GetAwaiter().GetResult();
                sampler.Start();
                measureFrom = DateTime.UtcNow;
            },
            onMeasureEnd: () =>
            {
                measureTo = DateTime.UtcNow;
                cpu = sampler.Stop();
                countersEnd = PgCounters.CountersAsync(db, ledgerTable ?? "project_billing").GetAwaiter().GetResult();
            });
        var extra = workload.Extra();
        await workload.DisposeAsync();

        // The ledger must balance, and exactly the acknowledged charges must be stored (faults may or may not be).
        var after = await LedgerAsync(ledgerTable);
        var stored = after.Charged - before.Charged;
        var storedCost = after.ChargedCost - before.ChargedCost;
        var balanceDrop = before.Balance - after.Balance;
        var problems = new List<string>();
        if (after.BadAccounts != 0) problems.Add($"{after.BadAccounts} account(s) with balance ≠ sum(history) or version ≠ newest seq");
        if (stored < result.AckedTotal || stored > result.AckedTotal + result.AmbiguousTotal)
            problems.Add($"{stored} charges stored but {result.AckedTotal} acknowledged (+{result.AmbiguousTotal} faults)");
        if (balanceDrop != storedCost) problems.Add($"balances fell by {balanceDrop} but stored charges cost {storedCost}");
        if (result.AmbiguousTotal == 0 && storedCost != result.AckedCostTotal) problems.Add($"stored charges cost {storedCost} but acknowledged {result.AckedCostTotal}");
        if (services is not null) problems.AddRange(services.Deaths());
        if (ledgerTable is null)
        {
            // The usage summary's rollup, kept by the grains: usage_hourly and the accounts' open hours = the usage rows.
            var rollup = await LedgerInvariants.FindUsageRollupViolationsAsync(database.Bench.ConnectionString);
            if (rollup.Count > 0) problems.Add($"{rollup.Count} usage rollup difference(s), first: {rollup[0]}");
        }

        // Account write statements: exact for the grains (from their rows), one per transaction for the seed, from the
        // statistics views (about a second behind) for the experiment.
        var writes = mode switch
        {
            "orleans" or "hold" or "refused" or "refused-hold" or "db-grain" => await GrainWritesAsync(measureFrom, measureTo, result.Ops),
            "seed" => result.Ops,
            _ => countersEnd!.AccountWrites - countersStart!.AccountWrites,
        };
        return new CaseFigures(accounts, path, mode, clients, services?.SiloCount ?? 0, result, cpu!, writes, countersEnd!.WalSyncs - countersStart!.WalSyncs,
            services?.SiloRssKb,
            services?.SiloHwmKb,
            extra, problems, after.HistoryRows);
    }

    private Task<LedgerTotals> LedgerAsync(string? sideTable) =>
        sideTable is null ? LedgerTotals.RealLedgerAsync(database.Bench) : LedgerTotals.SideLedgerAsync(database.Bench, sideTable);

    /// <summary>The grains' account write statements in the window, scaled to the measured calls.</summary>
    private async Task<long> GrainWritesAsync(DateTime from, DateTime to, long ops)
    {
        var (rows, statements) = await PgCounters.GrainWritesAsync(database.Bench, from, to);
        return rows == 0 ? 0 : (long)Math.Round(ops * (double)statements / rows);
    }
}
