using Orleans.Concurrency;
using System.Text.RegularExpressions;
using Billing.Storage;
using Microsoft.Extensions.Logging;

namespace Billing.Pricing;

/// <summary>One model's prices, held in memory so pricing a usage costs no query. The only writer of its rows.</summary>
[Reentrant]
public sealed partial class ModelPricingGrain(PricingStore store, TimeProvider clock, ILogger<ModelPricingGrain> logger)
    : Grain, IModelPricingGrain
{
    private const decimal MaxPricePerMillion = 1_000_000_000m;

    private List<ModelPrice> prices = [];

    public override async Task OnActivateAsync(CancellationToken cancellationToken) =>
        prices = await store.LoadAsync(this.GetPrimaryKey(), cancellationToken);

    public async Task<BillingResult<ModelPrice>> AddPrice(ModelPriceInput input)
    {
        if (Validate(input) is { } problem) return BillingResult<ModelPrice>.Fail(BillingStatus.InvalidInput, problem);
        var now = clock.GetDatabaseNow();
        var price = new ModelPrice(Guid.NewGuid(), this.GetPrimaryKey(), input.InputPricePerMillion, input.OutputPricePerMillion,
            input.Currency, (input.EffectiveFrom ?? now).ToUniversalTime().ToDatabasePrecision(), now);
        await store.InsertAsync(price);
        prices = [.. prices.Append(price).OrderBy(p => p.EffectiveFrom).ThenBy(p => p.CreatedAt)];
        logger.LogInformation("Price of model {ModelId} from {EffectiveFrom}: {InputPrice}/{OutputPrice} {Currency} per million tokens",
            price.ModelId, price.EffectiveFrom, price.InputPricePerMillion, price.OutputPricePerMillion, price.Currency);
        return BillingResult<ModelPrice>.Ok(price);
    }

    public Task<ModelPricing> GetPricing()
    {
        var now = clock.GetDatabaseNow();
        return Task.FromResult(new ModelPricing(InEffect(now), prices.Where(p => p.EffectiveFrom > now).ToArray()));
    }

    public Task<ModelPrice?> GetPriceAt(DateTimeOffset at) => Task.FromResult(InEffect(at));

    /// <summary>The newest price whose effective date has come (a future-dated row is not in effect yet).</summary>
    private ModelPrice? InEffect(DateTimeOffset at) => prices.LastOrDefault(p => p.EffectiveFrom <= at);

    private static string? Validate(ModelPriceInput input)
    {
        if (input.InputPricePerMillion < 0 || input.OutputPricePerMillion < 0) return "Prices must not be negative.";
        if (input.InputPricePerMillion == 0 && input.OutputPricePerMillion == 0) return "At least one price must be above zero.";
        if (input.InputPricePerMillion > MaxPricePerMillion || input.OutputPricePerMillion > MaxPricePerMillion)
            return $"Prices above {MaxPricePerMillion} per million tokens are refused.";
        if (input.InputPricePerMillion.Scale > UsageCost.MaxPriceScale || input.OutputPricePerMillion.Scale > UsageCost.MaxPriceScale)
            return $"Prices may have at most {UsageCost.MaxPriceScale} decimals.";
        if (input.Currency is null || !CurrencyCode().IsMatch(input.Currency)) return "currency must be an ISO 4217 code such as USD.";
        return null;
    }

    [GeneratedRegex("^[A-Z]{3}$")]
    private static partial Regex CurrencyCode();
}
