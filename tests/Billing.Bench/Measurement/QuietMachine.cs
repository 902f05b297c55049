using System.Diagnostics;
using static Billing.Bench.Report.Progress;

namespace Billing.Bench.Measurement;

/// <summary>The machine may be shared: a case measures only itself when other processes leave the machine idle.</summary>
internal static class QuietMachine
{
    /// <summary>Waits up to <paramref name="seconds"/> s until less than a quarter of a core is busy.</summary>
    public static async Task WaitAsync(int seconds)
    {
        var waited = Stopwatch.StartNew();
        var warned = false;
        while (waited.Elapsed < TimeSpan.FromSeconds(seconds))
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
}
