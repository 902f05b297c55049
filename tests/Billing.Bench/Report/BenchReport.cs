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
    public double Case(CaseFigures f, double? seedOps, bool last)
    {
        var result = f.Result;
        var cpu = f.Cpu;
        siloPeakKb = Math.Max(siloPeakKb, f.SiloHwmKb ?? 0);
        var ratio = seedOps is > 0 ? result.OpsPerSecond / seedOps.Value : (f.Mode == "seed" ? 1.0 : double.NaN);
        var ledger = f.Problems.Count == 0 ? "ok" : "FAILED";
        var disturbed = cpu["other"] > 30;
        if (disturbed) Say($"  NOTE: other processes used {cpu["other"]:F0}% of a core during this case: its figures are disturbed");
        var line = $"bench case={f.Accounts} path={f.Path} mode={f.Mode} clients={f.Clients} ops_per_s={result.OpsPerSecond:F0} " +
                   $"p50_ms={result.P50Ms:F2} p99_ms={result.P99Ms:F2} errors={result.Errors} ratio={ratio:F2} " +
                   $"max_ms={result.MaxMs:F1} writes_per_s={f.Writes / result.Seconds:F0} ops_per_write={Div(result.Ops, f.Writes):F2} " +
                   $"fsyncs_per_s={f.Fsyncs / result.Seconds:F0} ops_per_fsync={Div(result.Ops, f.Fsyncs):F1} " +
                   $"cpu_silo={cpu["silo"]:F0}% cpu_gw={cpu["gw"]:F0}% cpu_pg={cpu["pg"]:F0}% cpu_bench={cpu["bench"]:F0}% cpu_other={cpu["other"]:F0}% cpu_machine={cpu["machine"]:F0}% " +
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
        results.Add(new CaseSummary(f.Accounts, f.Path, f.Mode, f.Clients, result.OpsPerSecond, result.P50Ms, result.P99Ms, result.Errors, ratio,
            cpu["silo"], cpu["gw"], cpu["pg"], cpu["bench"], cpu["other"], Div(result.Ops, f.Writes), Div(result.Ops, f.Fsyncs), ledger));
        return f.Problems.Count > 0 ? 0 : cpu["other"];
    }

    /// <summary>The table of the counted cases; <paramref name="siloPid"/> (when a silo ran) adds its memory.</summary>
    public void PrintTable(int? siloPid, int activatedProjects)
    {
        Console.WriteLine();
        Console.WriteLine($"Results ({DateTime.Now:yyyy-MM-dd}, {Environment.ProcessorCount} cores, {options.Seconds} s per case after {options.WarmupSeconds} s warm-up; cpu in % of one core)");
        Console.WriteLine("| accounts | path | mode | clients | ops/s | p50 ms | p99 ms | errors | ratio | ops/write | ops/fsync | cpu silo | cpu gw | cpu pg | cpu bench | cpu other | ledger |");
        Console.WriteLine("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var s in results)
        {
            Console.WriteLine($"| {s.Accounts} | {s.Path} | {s.Mode} | {s.Clients} | {s.OpsPerSecond:F0} | {s.P50:F2} | {s.P99:F2} | {s.Errors} | {s.Ratio:F2} | {s.OpsPerWrite:F2} | {s.OpsPerFsync:F1} | " +
                              $"{s.CpuSilo:F0} | {s.CpuGw:F0} | {s.CpuPg:F0} | {s.CpuBench:F0} | {s.CpuOther:F0} | {s.Ledger} |");
        }

        if (siloPid is { } pid)
            Console.WriteLine($"silo peak working set (VmHWM): {siloPeakKb / 1024} MB; now {Mb(ProcStats.StatusValue(pid, "VmRSS"))} MB with {activatedProjects} project accounts activated");
    }

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

    private sealed record CaseSummary(string Accounts, string Path, string Mode, int Clients, double OpsPerSecond, double P50, double P99, long Errors,
        double Ratio, double CpuSilo, double CpuGw, double CpuPg, double CpuBench, double CpuOther, double OpsPerWrite, double OpsPerFsync, string Ledger);
}
