using System.Text.Json;
using System.Text.Json.Serialization;

namespace Billing.Client.Contracts;

public sealed record AlertsRequest(decimal[]? Thresholds);

public sealed record AlertsResponse(decimal[] Thresholds, decimal[] Crossed)
{
    public static AlertsResponse From(AlertSettings s) => new(s.Thresholds, s.Crossed);
}

public sealed record WebhookRequest(string? Url, string[]? Events, Guid? Id = null);

public sealed record WebhookResponse(
    Guid Id,
    string Url,
    string[] Events,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Secret,
    bool Enabled,
    DateTime CreatedAt)
{
    public static WebhookResponse From(WebhookEndpointView w) => new(w.Id, w.Url, w.Events, w.Secret, w.Enabled, w.CreatedAt.UtcDateTime);
}

public sealed record WebhookListResponse(WebhookResponse[] Items);

/// <summary>An event as stored: <see cref="Data"/> is its JSON object, decimals exactly as written.</summary>
public sealed record EventResponse(Guid Id, string Type, DateTime CreatedAt, JsonElement Data)
{
    public static EventResponse From(BillingEventView e)
    {
        using var data = JsonDocument.Parse(e.Data);
        return new(e.Id, e.Type, e.CreatedAt.UtcDateTime, data.RootElement.Clone());
    }
}

public sealed record EventPageResponse(EventResponse[] Items, string NextCursor)
{
    public static EventPageResponse From(BillingEventPage page) => new(page.Items.Select(EventResponse.From).ToArray(), page.NextCursor);
}
