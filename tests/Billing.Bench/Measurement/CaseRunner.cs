using System.Diagnostics;
using Billing.Bench.Workload;

namespace Billing.Bench.Measurement;

public sealed record CaseResult(
    double Seconds, long Ops, double OpsPerSecond, double P50Ms, double P99Ms, double MaxMs, long Errors,
    long AckedTotal, decimal AckedCostTotal, long AmbiguousTotal, IReadOnlyList<string> ErrorSamples);

/// <summary>Runs N closed-loop callers for a warm-up and then a measured window; latency percentiles of the measured calls.</summary>
public static class CaseRunner
{
    public static async Task<CaseResult> RunAsync(
        int clients, TimeSpan warmup, TimeSpan measured, Func<Random, Task<Outcome>> call,
        Action? onMeasureStart = null, Action? onMeasureEnd = null)
    {
        long measureStart = 0, measureEnd = 0; // Stopwatch timestamps; 0 = not yet
        var stop = 0;
        long acked = 0, ambiguous = 0, errors = 0;
        decimal ackedCost = 0;
        var costLock = new object();
        var errorSamples = new List<string>();
        var latencies = new List<long>[clients];

        var workers = Enumerable.Range(0, clients).Select(i => Task.Run(async () =>
        {
            var rng = new Random(unchecked(Environment.TickCount * 31 + i));
            var mine = latencies[i] = new List<long>(1 << 14);
            decimal myCost = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                var t0 = Stopwatch.GetTimestamp();
                Outcome outcome;
                try
                {
                    outcome = await call(rng);
                }
                catch (Exception e)
                {
                    outcome = Outcome.Fault($"{e.GetType().Name}: {e.Message}");
                }

                var t1 = Stopwatch.GetTimestamp();
                if (outcome.Charged)
                {
                    Interlocked.Increment(ref acked);
                    myCost += outcome.Cost;
                }
                else if (outcome.Ambiguous)
                {
                    Interlocked.Increment(ref ambiguous);
                }

                var ms = Volatile.Read(ref measureStart);
                var me = Volatile.Read(ref measureEnd);
                if (ms != 0 && t0 >= ms && (me == 0 || t1 <= me))
                {
                    if (outcome.Charged || outcome.Expected) mine.Add(t1 - t0);
                    else Interlocked.Increment(ref errors);
                }

                if (outcome.Error is { } error)
                {
                    lock (errorSamples)
                    {
                        if (errorSamples.Count < 5) errorSamples.Add(error);
                    }

                    if (outcome.Ambiguous) await Task.Delay(50); // do not spin on a broken path
                }
            }

            lock (costLock) ackedCost += myCost;
        })).ToArray();

        await Task.Delay(warmup);
        onMeasureStart?.Invoke();
        Volatile.Write(ref measureStart, Stopwatch.GetTimestamp());
        await Task.Delay(measured);
        var end = Stopwatch.GetTimestamp();
        Volatile.Write(ref measureEnd, end);
        onMeasureEnd?.Invoke();
        Volatile.Write(ref stop, 1);
        await Task.WhenAll(workers);

        var seconds = Stopwatch.GetElapsedTime(measureStart, end).TotalSeconds;
        var all = latencies.Where(l => l is not null).SelectMany(l => l).ToArray();
        Array.Sort(all);
        double Percentile(double p) => all.Length == 0 ? double.NaN
            : all[Math.Min(all.Length - 1, (int)Math.Ceiling(p * all.Length) - 1)] * 1000.0 / Stopwatch.Frequency;
        return new CaseResult(seconds, all.Length, all.Length / seconds, Percentile(0.50), Percentile(0.99), Percentile(1.0), errors,
            acked, ackedCost, ambiguous, errorSamples);
    }
}
