using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace Billing.Webhooks;

/// <summary>Webhook endpoints: created with a secret shown once, listed, deleted (admin routes of the gateway).</summary>
[StatelessWorker, Reentrant]
public sealed class WebhooksGrain(WebhookStore store, ILogger<WebhooksGrain> logger) : Grain, IWebhooksGrain
{
    public async Task<BillingResult<WebhookEndpointView>> Create(WebhookEndpointInput input)
    {
        if (!Uri.TryCreate(input.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            return Invalid("url must be an absolute http or https URL.");
        if (input.Events is not { Length: > 0 }) return Invalid("events must name at least one event type.");
        // A null entry is refused by itself: FirstOrDefault's null would read as "none unknown" and let the rest through.
        if (input.Events.Any(string.IsNullOrEmpty)) return Invalid("events must not contain null or empty event types.");
        if (input.Events.FirstOrDefault(e => !BillingEventTypes.All.Contains(e)) is { } unknown)
            return Invalid($"Unknown event type '{unknown}'; one of: {string.Join(", ", BillingEventTypes.All.Order())}.");

        var created = await store.CreateAsync(Guid.NewGuid(), url.ToString(), input.Events.Distinct().ToArray(), WebhookSignature.NewSecret());
        logger.LogInformation("Webhook endpoint {EndpointId} created for {Url} ({Events})", created.Id, created.Url, string.Join(", ", created.Events));
        return BillingResult<WebhookEndpointView>.Ok(created);
    }

    public async Task<WebhookEndpointList> List() => new(await store.ListAsync());

    public Task<bool> Delete(Guid id) => store.DeleteAsync(id);

    private static BillingResult<WebhookEndpointView> Invalid(string detail) => BillingResult<WebhookEndpointView>.Fail(BillingStatus.InvalidInput, detail);
}
