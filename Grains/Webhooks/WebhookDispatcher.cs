using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Billing.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;

namespace Billing.Webhooks;

/// <summary>
/// Delivers the outbox to webhook endpoints, at least once (E2), from every billing silo at the same time: it fans new
/// events out into deliveries, claims due ones (a lease) whenever a send slot is free, a few per endpoint at most,
/// POSTs them signed the Standard Webhooks way, and records each outcome: delivered, retried on the schedule, given
/// up, or the endpoint disabled on 410. An endpoint that never answers holds only its own slots, never the others'.
/// The retry schedule is durable (rows), not in memory: a silo that dies loses no event, its claims pass to another
/// silo when their lease runs out, and the receiver dedupes by <c>webhook-id</c>.
/// </summary>
public sealed partial class WebhookDispatcher(
    WebhookStore store, IHttpClientFactory httpClients, IOptions<WebhookOptions> options, ILogger<WebhookDispatcher> logger) : BackgroundService
{
    public const string HttpClientName = "billing-webhooks";

    /// <summary>
    /// Claims of one delivery that may end without an outcome (each silo that took it died first) before it is given
    /// up unsent: a delivery whose send brings its silo down would otherwise be retried, and bring silos down, forever.
    /// </summary>
    public const int MaxLostClaims = 3;

    private static readonly TimeSpan BacklogEvery = TimeSpan.FromSeconds(5);

    private readonly string claimant = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (!settings.Dispatch) return;
        var lastFanOut = Stopwatch.GetTimestamp() - (long)(settings.PollInterval.TotalSeconds * Stopwatch.Frequency);
        var lastBacklog = Stopwatch.GetTimestamp() - (long)(BacklogEvery.TotalSeconds * Stopwatch.Frequency);
        var failuresInARow = 0;

        // The sends in flight, each with its delivery; only this loop reads or changes it. Slots are claimed again as
        // soon as sends end, not once a whole batch has: a send waiting out the timeout holds back no other.
        var sending = new Dictionary<Task, ClaimedDelivery>();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var slotsFilled = false;
                try
                {
                    // Every poll interval, not at every send's end: new events wait for it as they did for a round.
                    if (Stopwatch.GetElapsedTime(lastFanOut) >= settings.PollInterval)
                    {
                        while (await store.FanOutAsync(500, stoppingToken) == 500)
                        {
                        }

                        lastFanOut = Stopwatch.GetTimestamp();
                    }

                    var free = settings.BatchSize - sending.Count;
                    if (free > 0)
                    {
                        var endpoints = sending.Values.Select(d => d.EndpointId).ToArray();
                        var deliveries = await store.ClaimAsync(claimant, settings.Lease, free, settings.MaxInFlightPerEndpoint, endpoints, stoppingToken);
                        foreach (var delivery in deliveries) sending.Add(DeliverAsync(delivery, settings, stoppingToken), delivery);
                        slotsFilled = deliveries.Count == free;
                    }

                    if (Stopwatch.GetElapsedTime(lastBacklog) >= BacklogEvery)
                    {
                        EventMetrics.SetBacklog(await store.BacklogAsync(stoppingToken));
                        lastBacklog = Stopwatch.GetTimestamp();
                    }

                    failuresInARow = 0;
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception exception)
                {
                    // The database unreachable, the schema not applied yet: try again next poll (quietly at first).
                    if (++failuresInARow > 3) LogRoundFailed(logger, exception, failuresInARow);
                }

                // More may be due when every free slot was filled; otherwise a send's end frees a slot (and its
                // endpoint's share), and the poll interval brings new events and due retries.
                if (!slotsFilled) await SendEndsOrPollAsync(sending.Keys, settings.PollInterval, stoppingToken);
                foreach (var (send, delivery) in sending.Where(s => s.Key.IsCompleted).ToArray())
                {
                    sending.Remove(send);
                    if (send.Exception is { } exception) LogOutcomeNotRecorded(logger, exception, delivery.EventId, delivery.EndpointId);
                }
            }
        }
        finally
        {
            // Stopping cancels the sends, which give their claims back; one not given back is attempted again after its lease.
            await Task.WhenAll(sending.Keys).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Waits until a send ends or <paramref name="pollInterval"/> passes (or the silo stops).</summary>
    private static async Task SendEndsOrPollAsync(IEnumerable<Task> sends, TimeSpan pollInterval, CancellationToken stoppingToken)
    {
        using var poll = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        poll.CancelAfter(pollInterval);
        await Task.WhenAny(sends.Append(Task.Delay(Timeout.Infinite, poll.Token)));
        await poll.CancelAsync(); // ends the wait's timer task when a send ended first
    }

    private async Task DeliverAsync(ClaimedDelivery delivery, WebhookOptions settings, CancellationToken stoppingToken)
    {
        // Given up without a send: a delivery whose sends keep bringing their silo down, or one to an endpoint created
        // before its host was left out of AllowedHosts.
        var unsent = delivery.LostClaims >= MaxLostClaims
            ? $"claimed {delivery.LostClaims} times without an outcome: each silo that took it stopped before recording one; given up unsent"
            : settings.AllowsHost(new Uri(delivery.Url)) ? null : $"host not in {WebhookOptions.Section}:AllowedHosts; given up unsent";
        if (unsent is not null)
        {
            await store.CompleteAsync(delivery, claimant, delivered: false, null, unsent, retryAfter: null, gone: false, CancellationToken.None, sent: false);
            EventMetrics.RecordFailed("gave_up");
            LogGivenUpUnsent(logger, delivery.EventId, delivery.EndpointId, unsent);
            return;
        }

        var timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        int? status = null;
        string? error = null;
        try
        {
            var body = Body(delivery);
            using var request = new HttpRequestMessage(HttpMethod.Post, delivery.Url)
            {
                Content = new StringContent(body, Encoding.UTF8, "application/json"),
            };
            request.Headers.TryAddWithoutValidation("webhook-id", delivery.EventId.ToString());
            request.Headers.TryAddWithoutValidation("webhook-timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
            request.Headers.TryAddWithoutValidation("webhook-signature", WebhookSignature.Sign(delivery.Secret, delivery.EventId.ToString(), timestamp, body));
            using var response = await httpClients.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stoppingToken);
            status = (int)response.StatusCode;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The silo is stopping: the claim goes back at once for another silo, neither an attempt nor a lost claim
            // (the receiver may still have got it: at least once, deduped by webhook-id).
            await ReleaseAsync(delivery);
            return;
        }
        catch (Exception exception) when (!stoppingToken.IsCancellationRequested)
        {
            error = exception is Polly.Timeout.TimeoutRejectedException ? $"no answer within {settings.Timeout.TotalSeconds:0.#} s" : exception.GetType().Name + ": " + exception.Message;
        }

        try
        {
            if (status is >= 200 and < 300)
            {
                await store.CompleteAsync(delivery, claimant, delivered: true, status, null, null, gone: false, CancellationToken.None);
                EventMetrics.RecordDelivered(delivery.Type, DateTimeOffset.UtcNow - delivery.CreatedAt);
                return;
            }

            var gone = status == (int)HttpStatusCode.Gone;
            var schedule = settings.EffectiveRetrySchedule;
            TimeSpan? retryAfter = !gone && delivery.Attempt <= schedule.Count ? schedule[delivery.Attempt - 1] : null;
            await store.CompleteAsync(delivery, claimant, delivered: false, status, error, retryAfter, gone, CancellationToken.None);
            EventMetrics.RecordFailed(gone ? "gone" : retryAfter is null ? "gave_up" : "retry");
            if (gone) LogEndpointGone(logger, delivery.EndpointId, delivery.Url);
            else LogAttemptFailed(logger, delivery.EventId, delivery.EndpointId, delivery.Attempt, status, error, retryAfter);
        }
        catch (Exception exception)
        {
            // The outcome is not recorded: the lease runs out and the delivery is attempted again (at least once).
            LogOutcomeNotRecorded(logger, exception, delivery.EventId, delivery.EndpointId);
        }
    }

    private async Task ReleaseAsync(ClaimedDelivery delivery)
    {
        try
        {
            using var shutdown = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await store.ReleaseAsync(delivery, claimant, shutdown.Token);
        }
        catch (Exception exception)
        {
            // Not given back: another silo takes it when its lease runs out, one lost claim.
            LogOutcomeNotRecorded(logger, exception, delivery.EventId, delivery.EndpointId);
        }
    }

    /// <summary>The event as delivered: <c>{ "id", "type", "createdAt", "data" }</c>, data exactly as stored.</summary>
    public static string Body(ClaimedDelivery delivery)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("id", delivery.EventId);
            json.WriteString("type", delivery.Type);
            json.WriteString("createdAt", delivery.CreatedAt.UtcDateTime);
            json.WritePropertyName("data");
            json.WriteRawValue(delivery.Data);
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook fan-out or claim failed ({FailuresInARow} in a row); retrying")]
    private static partial void LogRoundFailed(ILogger logger, Exception exception, int failuresInARow);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook endpoint {EndpointId} ({Url}) answered 410 Gone: disabled")]
    private static partial void LogEndpointGone(ILogger logger, Guid endpointId, string url);

    [LoggerMessage(Level = LogLevel.Information, Message = "Webhook event {EventId} to endpoint {EndpointId}: attempt {Attempt} failed (status {Status}, {Error}); next in {RetryAfter}")]
    private static partial void LogAttemptFailed(ILogger logger, Guid eventId, Guid endpointId, int attempt, int? status, string? error, TimeSpan? retryAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook event {EventId} to endpoint {EndpointId}: {Reason}")]
    private static partial void LogGivenUpUnsent(ILogger logger, Guid eventId, Guid endpointId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook event {EventId} to endpoint {EndpointId}: outcome not recorded; it will be attempted again after its lease")]
    private static partial void LogOutcomeNotRecorded(ILogger logger, Exception exception, Guid eventId, Guid endpointId);
}

public static class WebhookDispatcherRegistration
{
    /// <summary>
    /// The dispatcher and its HTTP client (IHttpClientFactory): no redirects followed, and the resilience pipeline's
    /// timeout per attempt. Retries are not in memory but in the outbox, on the schedule of <see cref="WebhookOptions"/>.
    /// </summary>
    public static IServiceCollection AddWebhookDispatcher(this IServiceCollection services)
    {
        services.AddHttpClient(WebhookDispatcher.HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(2) })
            .AddResilienceHandler("webhook-attempt", (pipeline, context) =>
                pipeline.AddTimeout(context.ServiceProvider.GetRequiredService<IOptions<WebhookOptions>>().Value.Timeout));
        services.AddHostedService<WebhookDispatcher>();
        return services;
    }
}
