using Billing.Bench.Measurement;
using static Billing.Bench.Report.Progress;

namespace Billing.Bench.Report;

/// <summary>
/// The output the README and scripts read: one <c>bench case=…</c> line per case (key=value figures, <c>ledger=ok</c>
/// or <c>FAILED</c>), then a Markdown table of the counted cases and the silo's peak memory.
/// </summary>
internal sealed class BenchReport(BenchOptions options)
{
    private readonly List<CaseSummary> results = [];
    private long siloPeakKb;

    /// <summary>True once a case lost money, acknowledged a charge that is not stored, or a process died.</summary>
    public bool Failed { get; private set; }

    /// <summary>
    /// Prints a case's line. A case disturbed by other processes (cpu_other above 30 % of a core) is not counted unless
    /// it is the <paramref name="last"/> attempt. Returns the disturbance that decides a retry (0 when the case failed).
    /// </summary>
    public double Case(CaseFigures f, CaseResult? seed, bool last)
    {
        var result = f.Result;
        var cpu = f.Cpu;
        siloPeakKb = Math.Max(siloPeakKb, f.SiloHwmKb ?? 0);
        var ratio = seed is { OpsPerSecond: > 0 } ? result.OpsPerSecond / seed.OpsPerSecond : (f.Mode == "seed" ? 1.0 : double.NaN);
        var p99Ratio = seed is { P99Ms: > 0 } ? result.P99Ms / seed.P99Ms : (f.Mode == "seed" ? 1.0 : double.NaN);
        var ledger = f.Problems.Count == 0 ? "ok" : "FAILED";
        var disturbed = cpu["other"] > 30;
        if (disturbed) Say($"  NOTE: other processes used {cpu["other"]:F0}% of a core during this case: its figures are disturbed");
        var line = $"bench case={f.Accounts} path={f.Path} mode={f.Mode} clients={f.Clients} silos={f.Silos} ops_per_s={result.OpsPerSecond:F0} " +
                   $"p50_ms={result.P50Ms:F2} p99_ms={result.P99Ms:F2} errors={result.Errors} ratio={ratio:F2} p99_ratio={p99Ratio:F2} " +
                   $"max_ms={result.MaxMs:F1} writes_per_s={f.Writes / result.Seconds:F0} ops_per_write={Div(result.Ops, f.Writes):F2} " +
                   $"fsyncs_per_s={f.Fsyncs / result.Seconds:F0} ops_per_fsync={Div(result.Ops, f.Fsyncs):F1} " +
                   $"cpu_silo={cpu["silo"]:F0}% cpu_gw={cpu["gw"]:F0}% cpu_pg={cpu["pg"]:F0}% cpu_bench={cpu["bench"]:F0}% cpu_other={cpu["other"]:F0}% cpu_machine={cpu["machine"]:F0}% " +
                   $"us_silo={MicrosPerOp(cpu["silo"], result):F0} us_gw={MicrosPerOp(cpu["gw"], result):F0} us_pg={MicrosPerOp(cpu["pg"], result):F0} " +
                   $"silo_ws_mb={Mb(f.SiloRssKb)} silo_peak_mb={Mb(f.SiloHwmKb)}{f.Extra} ledger={ledger}";
        var counted = !disturbed || last || f.Problems.Count > 0;
        Console.WriteLine(counted ? line : "(disturbed, not counted) " + line);
        if (result.ErrorSamples.Count > 0) Say($"  errors seen: {string.Join(" | ", result.ErrorSamples.Select(Truncate))}");
        if (f.Problems.Count > 0)
        {
            Failed = true;
            Console.WriteLine($"FAILED {f.Name}: {string.Join("; ", f.Problems)}");
        }

        Say($"end {f.Name}: {result.Ops} ops measured, {result.AckedTotal} acknowledged in all, ledger {ledger} ({f.HistoryRows} history rows)");
        if (!counted) return cpu["other"];
        results.Add(new CaseSummary(f.Accounts, f.Path, f.Mode, f.Clients, f.Silos, result.OpsPerSecond, result.P50Ms, result.P99Ms, result.Errors, ratio,
            p99Ratio, cpu["silo"], cpu["gw"], cpu["pg"], cpu["bench"], cpu["other"], MicrosPerOp(cpu["silo"], result), MicrosPerOp(cpu["gw"], result),
            MicrosPerOp(cpu["pg"], result), Div(result.Ops, f.Writes), Div(result.Ops, f.Fsyncs), ledger));
        return f.Problems.Count > 0 ? 0 : cpu["other"];
    }

    /// <summary>The silos' memory after a silo count's cases: peak, now, and per activated account above the start.</summary>
    public void SiloMemory(int silos, long? rssKb, long startRssKb, int activatedAccounts)
    {
        var perAccount = rssKb is { } now && activatedAccounts > 0 ? (now - startRssKb) / (double)activatedAccounts : double.NaN;
        Console.WriteLine($"bench memory silos={silos} silo_peak_mb={siloPeakKb / 1024} silo_ws_mb={Mb(rssKb)} silo_start_mb={startRssKb / 1024} " +
                          $"accounts={activatedAccounts} kb_per_account={perAccount:F1}");
    }

    /// <summary>The table of the counted cases.</summary>
    public void PrintTable()
    {
        Console.WriteLine();
        Console.WriteLine($"Results ({DateTime.Now:yyyy-MM-dd}, {Environment.ProcessorCount} cores, {options.Seconds} s per case after {options.WarmupSeconds} s warm-up; cpu in % of one core, µs = CPU per call)");
        Console.WriteLine("| accounts | path | mode | clients | silos | ops/s | p50 ms | p99 ms | errors | ratio | p99 ratio | ops/write | ops/fsync | cpu silo | cpu gw | cpu pg | µs silo | µs gw | µs pg | cpu other | ledger |");
        Console.WriteLine("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var s in results)
        {
            Console.WriteLine($"| {s.Accounts} | {s.Path} | {s.Mode} | {s.Clients} | {s.Silos} | {s.OpsPerSecond:F0} | {s.P50:F2} | {s.P99:F2} | {s.Errors} | {s.Ratio:F2} | {s.P99Ratio:F2} | " +
                              $"{s.OpsPerWrite:F2} | {s.OpsPerFsync:F1} | {s.CpuSilo:F0} | {s.CpuGw:F0} | {s.CpuPg:F0} | {s.UsSilo:F0} | {s.UsGw:F0} | {s.UsPg:F0} | {s.CpuOther:F0} | {s.Ledger} |");
        }

        Console.WriteLine($"silo peak working set (VmHWM, all silos of a count added up): {siloPeakKb / 1024} MB");
        if (options.Repeat > 1 || options.Silos.Length > 1) PrintMedians();
    }

    /// <summary>
    /// --repeat N: each case's median over its N runs (each run's ratio is to the seed's run just before it, in the same
    /// minute), with the range; with several silo counts, the median ops/s relative to one silo.
    /// </summary>
    private void PrintMedians()
    {
        Console.WriteLine();
        Console.WriteLine($"Medians over {options.Repeat} alternating run(s) of the seed and each case (range in brackets)");
        Console.WriteLine("| accounts | path | mode | clients | silos | runs | ops/s | p99 ms | ratio to seed | p99 ratio to seed | ops/s vs 1 silo |");
        Console.WriteLine("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        var groups = results.GroupBy(s => (s.Accounts, s.Path, s.Mode, s.Clients, s.Silos)).ToList();
        foreach (var g in groups)
        {
            var oneSilo = groups.FirstOrDefault(o => o.Key == (g.Key.Accounts, g.Key.Path, g.Key.Mode, g.Key.Clients, 1));
            var vsOne = g.Key.Mode != "seed" && g.Key.Silos != 1 && oneSilo is not null ? $"{Median(g.Select(s => s.OpsPerSecond)) / Median(oneSilo.Select(s => s.OpsPerSecond)):F2}" : "";
            Console.WriteLine($"| {g.Key.Accounts} | {g.Key.Path} | {g.Key.Mode} | {g.Key.Clients} | {g.Key.Silos} | {g.Count()} | {Median(g.Select(s => s.OpsPerSecond)):F0} | " +
                              $"{Median(g.Select(s => s.P99)):F2} | {Range(g.Select(s => s.Ratio))} | {Range(g.Select(s => s.P99Ratio))} | {vsOne} |");
            if (g.Key.Mode != "seed")
                Console.WriteLine($"bench median case={g.Key.Accounts} path={g.Key.Path} mode={g.Key.Mode} clients={g.Key.Clients} silos={g.Key.Silos} runs={g.Count()} " +
                                  $"ratio={Median(g.Select(s => s.Ratio)):F2} ratio_min={g.Min(s => s.Ratio):F2} ratio_max={g.Max(s => s.Ratio):F2} " +
                                  $"p99_ratio={Median(g.Select(s => s.P99Ratio)):F2} us_gw={Median(g.Select(s => s.UsGw)):F0}");
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string Range(IEnumerable<double> values)
    {
        var all = values.Where(v => !double.IsNaN(v)).ToArray();
        return all.Length == 0 ? "" : $"{Median(all):F2} [{all.Min():F2}–{all.Max():F2}]";
    }

    /// <summary>CPU per call in µs from a process group's % of one core: (cpu/100) core-seconds per second ÷ calls per second.</summary>
    private static double MicrosPerOp(double cpuPercent, CaseResult result) =>
        result.OpsPerSecond > 0 ? cpuPercent / 100 / result.OpsPerSecond * 1e6 : double.NaN;

    /// <summary>The last line: the run's verdict (the exit code follows it).</summary>
    public void PrintVerdict()
    {
        Console.WriteLine(Failed
            ? "bench FAILED: a case lost money, acknowledged a charge that is not stored, or its process died (see above)."
            : "bench OK: the ledger balanced after every case.");
    }

    public static string Mb(long? kb) => kb is null ? "?" : (kb.Value / 1024).ToString();

    public static string Truncate(string s) => s.Length > 300 ? s[..300] + "…" : s;

    private static double Div(long a, long b) => b == 0 ? double.NaN : (double)a / b;

    private sealed record CaseSummary(string Accounts, string Path, string Mode, int Clients, int Silos, double OpsPerSecond, double P50, double P99, long Errors,
        double Ratio, double P99Ratio, double CpuSilo, double CpuGw, double CpuPg, double CpuBench, double CpuOther, double UsSilo, double UsGw, double UsPg,
        double OpsPerWrite, double OpsPerFsync, string Ledger);
}
