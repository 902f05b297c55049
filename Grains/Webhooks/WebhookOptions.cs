namespace Billing.Webhooks;

/// <summary>Webhook delivery from the silos (configuration section <c>Billing:Webhooks</c>).</summary>
public sealed class WebhookOptions
{
    public const string Section = "Billing:Webhooks";

    /// <summary>API.md: after a failed attempt, the next one waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then it gives up.</summary>
    public static readonly TimeSpan[] DefaultRetrySchedule =
    [
        TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(30), TimeSpan.FromHours(2),
        TimeSpan.FromHours(5), TimeSpan.FromHours(10), TimeSpan.FromHours(10),
    ];

    /// <summary>Whether this silo runs a dispatcher (every billing silo does by default; they share the work).</summary>
    public bool Dispatch { get; set; } = true;

    /// <summary>The waits between attempts (<c>Billing:Webhooks:RetrySchedule:0=00:00:05</c>, …); empty: the default.</summary>
    public TimeSpan[] RetrySchedule { get; set; } = [];

    /// <summary>An attempt without an answer within this time failed.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a silo's claim on a delivery lasts; after it, another silo may take it (a silo that died).</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How often an idle dispatcher looks for new events and due retries.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Deliveries one dispatcher sends at once at most; it claims more as sends end.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>
    /// Of those, at most this many to one endpoint (per silo): an endpoint that never answers holds this many sends for
    /// the timeout, never the dispatcher's every one; half the batch by default, so one receiver alone still gets 16 at once.
    /// </summary>
    public int MaxInFlightPerEndpoint { get; set; } = 16;

    /// <summary>
    /// The hosts endpoints may be on (<c>Billing:Webhooks:AllowedHosts:0=hooks.example.com</c>, <c>…:1=*.example.net</c>
    /// for any subdomain); empty, as by default: any host (API.md: operators reach receivers on private networks and
    /// loopback). Checked when an endpoint is created and again before every send, so an endpoint created before the list
    /// was set is not sent to either.
    /// </summary>
    public string[] AllowedHosts { get; set; } = [];

    public IReadOnlyList<TimeSpan> EffectiveRetrySchedule => RetrySchedule.Length > 0 ? RetrySchedule : DefaultRetrySchedule;

    /// <summary>Whether <paramref name="url"/>'s host is one endpoints may be on (<see cref="AllowedHosts"/>).</summary>
    public bool AllowsHost(Uri url) => AllowedHosts.Length == 0 || AllowedHosts.Any(allowed =>
        allowed.StartsWith("*.", StringComparison.Ordinal)
            ? url.Host.EndsWith(allowed[1..], StringComparison.OrdinalIgnoreCase) && url.Host.Length > allowed.Length - 1
            : string.Equals(url.Host, allowed, StringComparison.OrdinalIgnoreCase));
}
