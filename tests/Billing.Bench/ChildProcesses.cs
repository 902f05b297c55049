using System.Diagnostics;

namespace Billing.Bench;

// The silo and gateway run as Billing.Testing.ChildProcess, the one harness the tests and the bank use too.

/// <summary>Reads CPU time and memory of processes from /proc (Linux).</summary>
public static class ProcStats
{
    private const double TicksPerSecond = 100.0; // USER_HZ on Linux

    /// <summary>utime + stime of a process, in seconds; null when it is gone.</summary>
    public static double? CpuSeconds(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // After "pid (comm) ": state=0, ppid=1, … utime=11, stime=12
            return (long.Parse(fields[11]) + long.Parse(fields[12])) / TicksPerSecond;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    public static int? ParentPid(int pid) => StatusValue(pid, "PPid") is { } v ? (int)v : null;

    /// <summary>A field of /proc/pid/status in kB (VmRSS, VmHWM) or as a number (PPid).</summary>
    public static long? StatusValue(int pid, string field)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith(field + ":", StringComparison.Ordinal)) continue;
                var value = line[(field.Length + 1)..].Trim().Split(' ')[0];
                return long.Parse(value);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }

        return null;
    }

    /// <summary>The server process and its children (backends, WAL writer, checkpointer…).</summary>
    public static int[] ProcessTree(int root)
    {
        var pids = new List<int> { root };
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == root) continue;
            if (ParentPid(pid) == root) pids.Add(pid);
        }

        return [.. pids];
    }

    /// <summary>(busy, total) jiffies of the whole machine from /proc/stat.</summary>
    public static (double Busy, double Total) MachineCpu()
    {
        var line = File.ReadLines("/proc/stat").First();
        var v = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(double.Parse).ToArray();
        var idle = v[3] + v[4];
        var total = v.Take(8).Sum();
        return ((total - idle) / TicksPerSecond, total / TicksPerSecond);
    }
}

/// <summary>CPU used by each process of interest between two points in time, as % of one core.</summary>
public sealed class CpuSampler(Func<IReadOnlyDictionary<string, int[]>> groups)
{
    private Dictionary<string, Dictionary<int, double>> start = [];
    private (double Busy, double Total) machineStart;
    private long startTicks;

    public void Start()
    {
        start = Snapshot();
        machineStart = ProcStats.MachineCpu();
        startTicks = Stopwatch.GetTimestamp();
    }

    /// <summary>% of one core per group, plus "machine" (all processes) and "other" (machine minus the groups).</summary>
    public Dictionary<string, double> Stop()
    {
        var end = Snapshot();
        var machineEnd = ProcStats.MachineCpu();
        var wall = Stopwatch.GetElapsedTime(startTicks).TotalSeconds;
        var result = new Dictionary<string, double>();
        double sum = 0;
        foreach (var (group, pids) in end)
        {
            start.TryGetValue(group, out var before);
            double used = 0;
            foreach (var (pid, seconds) in pids)
            {
                used += seconds - (before is not null && before.TryGetValue(pid, out var b) ? b : 0);
            }

            result[group] = 100 * used / wall;
            sum += used;
        }

        var machine = machineEnd.Busy - machineStart.Busy;
        result["machine"] = 100 * machine / wall;
        result["other"] = Math.Max(0, 100 * (machine - sum) / wall);
        return result;
    }

    private Dictionary<string, Dictionary<int, double>> Snapshot()
    {
        var snapshot = new Dictionary<string, Dictionary<int, double>>();
        foreach (var (group, pids) in groups())
        {
            var d = new Dictionary<int, double>();
            foreach (var pid in pids)
            {
                if (ProcStats.CpuSeconds(pid) is { } s) d[pid] = s;
            }

            snapshot[group] = d;
        }

        return snapshot;
    }
}
