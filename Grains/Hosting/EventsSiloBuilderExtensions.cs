using Billing.Events;
using Billing.Storage;
using Billing.Webhooks;
using Microsoft.Extensions.DependencyInjection;

namespace Billing.Hosting;

public static class EventsSiloBuilderExtensions
{
    /// <summary>The outbox (balance alerts, <c>GET /v1/events</c>) and webhook delivery from this silo.</summary>
    public static ISiloBuilder AddBillingEvents(this ISiloBuilder silo)
    {
        silo.Services.AddSingleton<EventStore>();
        silo.Services.AddSingleton<WebhookStore>();
        silo.Services.AddOptions<WebhookOptions>().Bind(silo.Configuration.GetSection(WebhookOptions.Section))
            .Validate(o => o.BatchSize >= 1 && o.MaxInFlightPerEndpoint >= 1, $"{WebhookOptions.Section}: BatchSize and MaxInFlightPerEndpoint must be at least 1 (0 would send nothing).")
            .ValidateOnStart();
        silo.Services.AddWebhookDispatcher();
        return silo;
    }
}
