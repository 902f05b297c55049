using Billing.Accounts;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Billing.Webhooks;

/// <summary>Webhook endpoints: created with a secret shown once, listed, deleted (admin routes of the gateway).</summary>
[StatelessWorker, Reentrant]
public sealed class WebhooksGrain(WebhookStore store, IOptions<WebhookOptions> options, ILogger<WebhooksGrain> logger) : Grain, IWebhooksGrain, IIncomingGrainCallFilter
{
    /// <summary>Every call is the operator's: from the gateway or the billing grains only (<see cref="OperatorCalls"/>).</summary>
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (OperatorCalls.Allowed(context, ServiceProvider, logger, out var detail))
        {
            await context.Invoke();
            return;
        }

        context.Result = context.InterfaceMethod.Name switch
        {
            nameof(Create) => BillingResult<WebhookEndpointView>.Fail(BillingStatus.Forbidden, detail),
            nameof(CreateOnce) => BillingResult<WebhookEndpointCreated>.Fail(BillingStatus.Forbidden, detail),
            _ => throw new BillingOperationFailedException(detail), // List and Delete answer no result to refuse with
        };
    }

    public async Task<BillingResult<WebhookEndpointView>> Create(WebhookEndpointInput input) => (await CreateOnce(input)).Select(created => created.Endpoint);

    public async Task<BillingResult<WebhookEndpointCreated>> CreateOnce(WebhookEndpointInput input)
    {
        if (!Uri.TryCreate(input.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            return Invalid("url must be an absolute http or https URL.");
        if (!options.Value.AllowsHost(url))
            return Invalid($"url's host '{url.Host}' is not one this deployment sends webhooks to ({WebhookOptions.Section}:AllowedHosts: {string.Join(", ", options.Value.AllowedHosts)}).");
        if (input.Events is not { Length: > 0 }) return Invalid("events must name at least one event type.");
        // A null entry is refused by itself: FirstOrDefault's null would read as "none unknown" and let the rest through.
        if (input.Events.Any(string.IsNullOrEmpty)) return Invalid("events must not contain null or empty event types.");
        if (input.Events.FirstOrDefault(e => !BillingEventTypes.All.Contains(e)) is { } unknown)
            return Invalid($"Unknown event type '{unknown}'; one of: {string.Join(", ", BillingEventTypes.All.Order())}.");

        if (input.Id == Guid.Empty) return Invalid("id must not be the nil UUID.");

        var events = input.Events.Distinct().ToArray();
        var (endpoint, created) = await store.CreateAsync(input.Id ?? Guid.NewGuid(), url.ToString(), events, WebhookSignature.NewSecret());
        if (created)
        {
            logger.LogInformation("Webhook endpoint {EndpointId} created for {Url} ({Events})", endpoint.Id, endpoint.Url, string.Join(", ", endpoint.Events));
            return BillingResult<WebhookEndpointCreated>.Ok(new WebhookEndpointCreated(endpoint, Created: true));
        }

        // The id was created before: the same request again (its answer lost) gets the endpoint as created, secret too.
        return endpoint.Url == url.ToString() && endpoint.Events.Order().SequenceEqual(events.Order())
            ? BillingResult<WebhookEndpointCreated>.Ok(new WebhookEndpointCreated(endpoint, Created: false))
            : BillingResult<WebhookEndpointCreated>.Fail(BillingStatus.WebhookConflict, $"Webhook endpoint {endpoint.Id} exists with another url or other events; use a new id.");
    }

    public async Task<WebhookEndpointList> List() => new(await store.ListAsync());

    public Task<bool> Delete(Guid id) => store.DeleteAsync(id);

    private static BillingResult<WebhookEndpointCreated> Invalid(string detail) => BillingResult<WebhookEndpointCreated>.Fail(BillingStatus.InvalidInput, detail);
}
