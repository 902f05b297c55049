using System.Diagnostics.Metrics;

namespace Billing.Diagnostics;

/// <summary>
/// The outbox and webhook instruments of the <c>Billing</c> meter (a meter of the same name as
/// <see cref="BillingMetrics"/>: exporters subscribe by name, so they are one meter to them).
/// </summary>
public static class EventMetrics
{
    private static readonly Meter Meter = new(BillingMetrics.MeterName, "1.0");

    private static readonly Counter<long> Written = Meter.CreateCounter<long>(
        "billing.events.written", "{event}", "Events written to the outbox, by type.");

    private static readonly Counter<long> Delivered = Meter.CreateCounter<long>(
        "billing.webhooks.delivered", "{delivery}", "Webhook deliveries answered 2xx.");

    private static readonly Counter<long> Failed = Meter.CreateCounter<long>(
        "billing.webhooks.failed", "{attempt}", "Webhook attempts that failed, by outcome (retry, gave_up, gone).");

    private static readonly Histogram<double> Latency = Meter.CreateHistogram<double>(
        "billing.webhooks.delivery_latency", "ms", "From an event's creation to its successful delivery.");

    private static long backlog;

    static EventMetrics()
    {
        Meter.CreateObservableGauge("billing.webhooks.backlog", () => Interlocked.Read(ref backlog), "{delivery}",
            "Webhook deliveries pending (due now or waiting for a retry), as the dispatcher last counted them.");
    }

    public static void RecordWritten(string type, int count = 1) => Written.Add(count, new KeyValuePair<string, object?>("type", type));

    public static void RecordDelivered(string type, TimeSpan sinceEvent)
    {
        Delivered.Add(1, new KeyValuePair<string, object?>("type", type));
        Latency.Record(sinceEvent.TotalMilliseconds);
    }

    public static void RecordFailed(string outcome) => Failed.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public static void SetBacklog(long pending) => Interlocked.Exchange(ref backlog, pending);
}
