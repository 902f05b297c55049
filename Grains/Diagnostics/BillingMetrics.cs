using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Billing.Diagnostics;

/// <summary>The <c>Billing</c> meter. Exported by the silo (OpenTelemetry); names follow OpenTelemetry conventions.</summary>
public static class BillingMetrics
{
    public const string MeterName = "Billing";

    private static readonly Meter Meter = new(MeterName, "1.0");

    private static readonly Counter<long> UsageRecorded = Meter.CreateCounter<long>(
        "billing.usage.recorded", "{usage}", "Usages charged (hold captures included), by paying account kind.");

    // OpenTelemetry exports long and double instruments only (a decimal counter is silently dropped), and money is
    // never a double: the cost is counted in billionths of the currency unit, whole ones only, the fraction carried
    // to the next charge of that currency so the counter's sum stays exact to the billionth.
    private static readonly Counter<long> CostCharged = Meter.CreateCounter<long>(
        "billing.cost.charged", "{nano_currency_unit}", "Money charged for usage, per currency, in billionths of the currency unit.");

    private static readonly Dictionary<string, decimal> CostCarried = [];

    private static readonly Counter<long> Refusals = Meter.CreateCounter<long>(
        "billing.refusals", "{refusal}", "Calls refused, by reason.");

    private static readonly Histogram<double> DeductionLatency = Meter.CreateHistogram<double>(
        "billing.deduction.duration", "ms", "Time from a charge reaching its account to its commit.");

    private static readonly Histogram<long> BatchSize = Meter.CreateHistogram<long>(
        "billing.group_commit.batch_size", "{row}", "History rows one account's group commit writes at once (the silo's ledger writer may send several accounts' in one round trip).");

    public static void RecordCharge(string paidBy, decimal cost, string currency)
    {
        UsageRecorded.Add(1, new KeyValuePair<string, object?>("paid_by", paidBy));
        long nanos;
        lock (CostCarried)
        {
            var total = cost * 1_000_000_000m + CostCarried.GetValueOrDefault(currency);
            var whole = decimal.Truncate(total);
            CostCarried[currency] = total - whole;
            nanos = (long)whole;
        }

        CostCharged.Add(nanos, new KeyValuePair<string, object?>("currency", currency));
    }

    public static void RecordRefusal(BillingStatus reason) =>
        Refusals.Add(1, new KeyValuePair<string, object?>("reason", reason.ToString()));

    public static void RecordDeduction(long startTimestamp) =>
        DeductionLatency.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds);

    public static void RecordBatch(int size) => BatchSize.Record(size);
}
