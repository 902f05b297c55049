namespace Billing;

/// <summary>A price to add for a model, per million tokens; <see cref="EffectiveFrom"/> defaults to now.</summary>
[GenerateSerializer, Immutable, Alias("Billing.ModelPriceInput")]
public sealed record ModelPriceInput(decimal InputPricePerMillion, decimal OutputPricePerMillion, string Currency, DateTimeOffset? EffectiveFrom);

[GenerateSerializer, Immutable, Alias("Billing.ModelPrice")]
public sealed record ModelPrice(
    Guid Id,
    Guid ModelId,
    decimal InputPricePerMillion,
    decimal OutputPricePerMillion,
    string Currency,
    DateTimeOffset EffectiveFrom,
    DateTimeOffset CreatedAt);

/// <summary>The price in effect now (null when none) and the prices that take effect later, soonest first.</summary>
[GenerateSerializer, Immutable, Alias("Billing.ModelPricing")]
public sealed record ModelPricing(ModelPrice? Current, ModelPrice[] Scheduled);
