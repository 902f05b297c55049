using System.Diagnostics;
using Billing.Accounts;
using Billing.Hosting;
using Orleans.Concurrency;
using System.Text.RegularExpressions;
using Billing.Storage;
using Microsoft.Extensions.Logging;

namespace Billing.Pricing;

/// <summary>
/// One model's prices: the only writer of its rows, and the reader for GET …/pricing. Usage is priced by each silo's
/// <see cref="PriceBook"/>; a new price is answered only once every silo's book prices with it (see there).
/// </summary>
[Reentrant]
public sealed partial class ModelPricingGrain(
    PricingStore store,
    TimeProvider clock,
    PriceBook book,
    IPriceBookServiceClient books,
    IClusterMembershipService membership,
    IClusterManifestProvider manifests,
    ILogger<ModelPricingGrain> logger)
    : Grain, IModelPricingGrain, IIncomingGrainCallFilter
{
    private const decimal MaxPricePerMillion = 1_000_000_000m;

    private List<ModelPrice> prices = [];

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        try
        {
            prices = await store.LoadAsync(this.GetPrimaryKey(), cancellationToken);
        }
        catch (Exception exception) when (BillingFaults.Translate(exception) is { } fault)
        {
            // An activation's fault reaches the caller without passing the grain call filter: translate it here.
            LogActivationFailed(logger, exception, this.GetPrimaryKey());
            throw fault;
        }
    }

    /// <summary>Reads for anyone; a new price only from the gateway or the billing grains (<see cref="OperatorCalls"/>).</summary>
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod.Name != nameof(AddPrice) || OperatorCalls.Allowed(context, ServiceProvider, logger, out var detail))
        {
            await context.Invoke();
            return;
        }

        context.Result = BillingResult<ModelPrice>.Fail(BillingStatus.Forbidden, detail);
    }

    public async Task<BillingResult<ModelPrice>> AddPrice(ModelPriceInput input)
    {
        if (Validate(input) is { } problem) return BillingResult<ModelPrice>.Fail(BillingStatus.InvalidInput, problem);
        var now = clock.GetDatabaseNow();
        var price = new ModelPrice(Guid.NewGuid(), this.GetPrimaryKey(), input.InputPricePerMillion, input.OutputPricePerMillion,
            input.Currency, (input.EffectiveFrom ?? now).ToUniversalTime().ToDatabasePrecision(), now);
        await store.InsertAsync(price);
        var committed = Stopwatch.GetTimestamp();
        prices = [.. prices.Append(price).OrderBy(p => p.EffectiveFrom).ThenBy(p => p.CreatedAt)];
        await PublishAsync(price, committed);
        logger.LogInformation("Price of model {ModelId} from {EffectiveFrom}: {InputPrice}/{OutputPrice} {Currency} per million tokens",
            price.ModelId, price.EffectiveFrom, price.InputPricePerMillion, price.OutputPricePerMillion, price.Currency);
        return BillingResult<ModelPrice>.Ok(price);
    }

    /// <summary>
    /// Hands the stored price to every silo hosting the billing grains and waits for each. A silo that does not
    /// acknowledge in <see cref="PriceBook.PushTimeout"/> (frozen, partitioned, just joining) is waited out instead:
    /// the answer comes once <see cref="PriceBook.Lease"/> has passed since the commit, after which that silo's book
    /// has either reloaded the new row or refuses to price until it has.
    /// </summary>
    private async Task PublishAsync(ModelPrice price, long committed)
    {
        book.Apply(price);
        var billingGrains = this.GetGrainId().Type;
        var manifest = manifests.Current;
        var targets = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active)
            // Silos of other services (agent silos) host no billing grains and price nothing; a silo whose manifest
            // is not known yet counts as one that may price.
            .Where(m => !manifest.Silos.TryGetValue(m.SiloAddress, out var grains) || grains.Grains.ContainsKey(billingGrains))
            .Select(m => m.SiloAddress)
            .ToArray();
        var missed = (await Task.WhenAll(targets.Select(async silo =>
        {
            try
            {
                await books.On(silo).Apply(price).WaitAsync(PriceBook.PushTimeout);
                return null;
            }
            catch (Exception exception)
            {
                LogPushFailed(logger, price.ModelId, silo, exception.GetType().Name);
                return silo;
            }
        }))).OfType<SiloAddress>().ToArray();
        if (missed.Length == 0) return;

        // Half a second for the clocks' rates to differ between machines.
        var wait = PriceBook.Lease + TimeSpan.FromMilliseconds(500) - Stopwatch.GetElapsedTime(committed);
        LogWaitingOutLease(logger, price.ModelId, missed.Length, wait);
        if (wait > TimeSpan.Zero) await Task.Delay(wait);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Prices of model {ModelId} could not be loaded; its activation fails with a retryable fault")]
    private static partial void LogActivationFailed(ILogger logger, Exception exception, Guid modelId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "New price of model {ModelId} not acknowledged by silo {Silo} ({ExceptionType})")]
    private static partial void LogPushFailed(ILogger logger, Guid modelId, SiloAddress silo, string exceptionType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "New price of model {ModelId}: {Silos} silo(s) did not acknowledge; answering after their price book lease expires in {Wait}")]
    private static partial void LogWaitingOutLease(ILogger logger, Guid modelId, int silos, TimeSpan wait);

    [GeneratedRegex("^[A-Z]{3}$")]
    private static partial Regex CurrencyCode();
}
