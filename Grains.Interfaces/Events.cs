namespace Billing;

/// <summary>The types of billing events (API.md "Balance alerts and webhooks").</summary>
public static class BillingEventTypes
{
    public const string BalanceLow = "balance.low";
    public const string BalanceDepleted = "balance.depleted";
    public const string BalanceRecovered = "balance.recovered";
    public const string BillingErrorCreated = "billing_error.created";
    public const string BillingErrorResolved = "billing_error.resolved";
    /// <summary>Written by the holds feature when a hold expires (see <c>BillingEvents.HoldExpired</c>).</summary>
    public const string HoldExpired = "hold.expired";
    /// <summary>Written by the grants feature when a grant expires with something left (see <c>BillingEvents.GrantExpired</c>).</summary>
    public const string GrantExpired = "grant.expired";

    public static readonly IReadOnlySet<string> All = new HashSet<string>
    {
        BalanceLow, BalanceDepleted, BalanceRecovered, BillingErrorCreated, BillingErrorResolved, HoldExpired, GrantExpired,
    };
}

/// <summary>An account's alert thresholds, and those that <c>available</c> is at or below now.</summary>
[GenerateSerializer, Immutable, Alias("Billing.AlertSettings")]
public sealed record AlertSettings(decimal[] Thresholds, decimal[] Crossed);

/// <summary>Balance alerts of one account (both account grains implement it). Key: the user or project id.</summary>
[Alias("Billing.IBalanceAlertsGrain")]
public interface IBalanceAlertsGrain : IGrainWithGuidKey
{
    /// <summary>Replaces the thresholds: up to 10 positive amounts (an empty list removes them).</summary>
    [Alias("SetAlerts")]
    Task<BillingResult<AlertSettings>> SetAlerts(decimal[] thresholds);

    [Alias("GetAlerts")]
    Task<BillingResult<AlertSettings>> GetAlerts();
}

/// <summary>One stored event. <see cref="Data"/> is its JSON object, exact decimals as written.</summary>
[GenerateSerializer, Immutable, Alias("Billing.BillingEventView")]
public sealed record BillingEventView(Guid Id, string Type, DateTimeOffset CreatedAt, string Data);

/// <summary>
/// Events after <see cref="After"/> (a cursor from a previous page; null: from the start), oldest first, filtered by
/// type (any of), scope and scope id.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.BillingEventQuery")]
public sealed record BillingEventQuery(string? After, string[]? Types, string? Scope, Guid? ScopeId, int Limit);

/// <summary>A page of events; <see cref="NextCursor"/> is the position after the last item (or the one asked for).</summary>
[GenerateSerializer, Immutable, Alias("Billing.BillingEventPage")]
public sealed record BillingEventPage(BillingEventView[] Items, string NextCursor);

/// <summary>Reads the outbox. Stateless; use key 0.</summary>
[Alias("Billing.IBillingEventsGrain")]
public interface IBillingEventsGrain : IGrainWithIntegerKey
{
    [Alias("List")]
    Task<BillingResult<BillingEventPage>> List(BillingEventQuery query);
}

/// <summary>An endpoint to create; <see cref="Id"/> makes the creation idempotent (the same id again answers that endpoint).</summary>
[GenerateSerializer, Immutable, Alias("Billing.WebhookEndpointInput")]
public sealed record WebhookEndpointInput(string Url, string[] Events, Guid? Id = null);

/// <summary>The endpoint a creation answers with, and whether this call created it (false: its id was created before, with the same url and events).</summary>
[GenerateSerializer, Immutable, Alias("Billing.WebhookEndpointCreated")]
public sealed record WebhookEndpointCreated(WebhookEndpointView Endpoint, bool Created);

/// <summary>A webhook endpoint; <see cref="Secret"/> only in the answer that created it.</summary>
[GenerateSerializer, Immutable, Alias("Billing.WebhookEndpointView")]
public sealed record WebhookEndpointView(Guid Id, string Url, string[] Events, string? Secret, bool Enabled, DateTimeOffset CreatedAt);

[GenerateSerializer, Immutable, Alias("Billing.WebhookEndpointList")]
public sealed record WebhookEndpointList(WebhookEndpointView[] Items);

/// <summary>Webhook endpoints (admin). Stateless; use key 0.</summary>
[Alias("Billing.IWebhooksGrain")]
public interface IWebhooksGrain : IGrainWithIntegerKey
{
    [Alias("Create")]
    Task<BillingResult<WebhookEndpointView>> Create(WebhookEndpointInput input);

    /// <summary>
    /// As <see cref="Create"/>, idempotent by <see cref="WebhookEndpointInput.Id"/>: the same id with the same url and
    /// events answers the endpoint, with its secret (the caller whose answer was lost needs it); with others, a conflict.
    /// </summary>
    [Alias("CreateOnce")]
    Task<BillingResult<WebhookEndpointCreated>> CreateOnce(WebhookEndpointInput input);

    [Alias("List")]
    Task<WebhookEndpointList> List();

    /// <summary>False when there is no such endpoint.</summary>
    [Alias("Delete")]
    Task<bool> Delete(Guid id);
}
