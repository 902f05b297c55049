using Microsoft.Extensions.DependencyInjection;

namespace Billing.Tests;

/// <summary>
/// A grain of some other part of the platform (an agent, say): not a billing grain. It may record usage through
/// <see cref="IUsageGrain"/>; the money-moving calls it tries on accounts must be refused.
/// </summary>
[Alias("Billing.Tests.IRogueAgentGrain")]
public interface IRogueAgentGrain : IGrainWithGuidKey
{
    [Alias("CreditUser")]
    Task<BillingResult<AccountView>> CreditUser(Guid userId, decimal amount);

    /// <summary>The same call started off the grain's scheduler, where it is sent as the silo's hosted client.</summary>
    [Alias("CreditUserOffScheduler")]
    Task<BillingResult<AccountView>> CreditUserOffScheduler(Guid userId, decimal amount);

    [Alias("CreditProject")]
    Task<BillingResult<AccountView>> CreditProject(Guid projectId, decimal amount);

    [Alias("ChargeUser")]
    Task<BillingResult<UsageReceipt>> ChargeUser(Guid userId, AccountCharge charge);

    [Alias("ChangeUserPlan")]
    Task<BillingResult<AccountView>> ChangeUserPlan(Guid userId, PlanChange plan);

    [Alias("InitializeUser")]
    Task<BillingResult<AccountInitialized>> InitializeUser(Guid userId);

    [Alias("ReadUser")]
    Task<BillingResult<AccountView>> ReadUser(Guid userId);

    [Alias("RecordUsage")]
    Task<BillingResult<UsageReceipt>> RecordUsage(PersonalUsage usage);

    [Alias("PriceModel")]
    Task<BillingResult<ModelPrice>> PriceModel(Guid modelId, ModelPriceInput price);

    [Alias("ReadModelPricing")]
    Task<ModelPricing> ReadModelPricing(Guid modelId);

    [Alias("CreateWebhook")]
    Task<BillingResult<WebhookEndpointCreated>> CreateWebhook(WebhookEndpointInput input);

    [Alias("ListWebhooks")]
    Task<WebhookEndpointList> ListWebhooks();

    [Alias("DeleteWebhook")]
    Task<bool> DeleteWebhook(Guid id);

    [Alias("ResolveBillingError")]
    Task<BillingResult<BillingErrorView>> ResolveBillingError(Guid billingErrorId);

    [Alias("ListBillingErrors")]
    Task<BillingResult<BillingErrorPage>> ListBillingErrors(BillingErrorQuery query);

    /// <summary>Pushes a price straight to every silo's price book, past the pricing grain (its grain service).</summary>
    [Alias("PushPrice")]
    Task PushPrice(ModelPrice price);
}

public sealed class RogueAgentGrain : Grain, IRogueAgentGrain
{
    public Task<BillingResult<AccountView>> CreditUser(Guid userId, decimal amount) =>
        GrainFactory.GetGrain<IUserGrain>(userId).Credit(new AccountCredit(amount, HistoryReasons.PromotionalCredit, Guid.NewGuid()));

    public Task<BillingResult<AccountView>> CreditUserOffScheduler(Guid userId, decimal amount)
    {
        var factory = GrainFactory;
        return Task.Run(() => factory.GetGrain<IUserGrain>(userId).Credit(new AccountCredit(amount, HistoryReasons.PromotionalCredit, Guid.NewGuid())));
    }

    public Task<BillingResult<AccountView>> CreditProject(Guid projectId, decimal amount) =>
        GrainFactory.GetGrain<IProjectGrain>(projectId).Credit(new AccountCredit(amount, HistoryReasons.TopUp, Guid.NewGuid()));

    public Task<BillingResult<UsageReceipt>> ChargeUser(Guid userId, AccountCharge charge) =>
        GrainFactory.GetGrain<IUserGrain>(userId).Charge(charge);

    public Task<BillingResult<AccountView>> ChangeUserPlan(Guid userId, PlanChange plan) =>
        GrainFactory.GetGrain<IUserGrain>(userId).ChangePlan(plan);

    public Task<BillingResult<AccountInitialized>> InitializeUser(Guid userId) => GrainFactory.GetGrain<IUserGrain>(userId).Initialize();

    public Task<BillingResult<AccountView>> ReadUser(Guid userId) => GrainFactory.GetGrain<IUserGrain>(userId).GetAccount();

    public Task<BillingResult<UsageReceipt>> RecordUsage(PersonalUsage usage) => GrainFactory.GetGrain<IUsageGrain>(0).RecordPersonalUsage(usage);

    public Task<BillingResult<ModelPrice>> PriceModel(Guid modelId, ModelPriceInput price) => GrainFactory.GetGrain<IModelPricingGrain>(modelId).AddPrice(price);

    public Task<ModelPricing> ReadModelPricing(Guid modelId) => GrainFactory.GetGrain<IModelPricingGrain>(modelId).GetPricing();

    public Task<BillingResult<WebhookEndpointCreated>> CreateWebhook(WebhookEndpointInput input) => GrainFactory.GetGrain<IWebhooksGrain>(0).CreateOnce(input);

    public Task<WebhookEndpointList> ListWebhooks() => GrainFactory.GetGrain<IWebhooksGrain>(0).List();

    public Task<bool> DeleteWebhook(Guid id) => GrainFactory.GetGrain<IWebhooksGrain>(0).Delete(id);

    public Task<BillingResult<BillingErrorView>> ResolveBillingError(Guid billingErrorId) => GrainFactory.GetGrain<IBillingErrorsGrain>(0).Resolve(billingErrorId);

    public Task<BillingResult<BillingErrorPage>> ListBillingErrors(BillingErrorQuery query) => GrainFactory.GetGrain<IBillingErrorsGrain>(0).List(query);

    public async Task PushPrice(ModelPrice price)
    {
        var books = ServiceProvider.GetRequiredService<Billing.Pricing.IPriceBookServiceClient>();
        foreach (var silo in ServiceProvider.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active))
            await books.On(silo.SiloAddress).Apply(price);
    }
}

/// <summary>
/// The test silo's billing grain (declared with <see cref="Billing.Accounts.TrustedBillingGrain"/> in the test
/// cluster only): it hands an account a charge or a hold placement as it is, to test the account's own decisions.
/// </summary>
[Alias("Billing.Tests.ITestChargerGrain")]
public interface ITestChargerGrain : IGrainWithIntegerKey
{
    [Alias("Charge")]
    Task<BillingResult<UsageReceipt>> Charge(AccountKind kind, Guid accountId, AccountCharge charge);

    /// <summary>A placement as the usage grain sends it to the payer it tries (a copy that arrives late, for example).</summary>
    [Alias("PlaceHold")]
    Task<BillingResult<HoldView>> PlaceHold(AccountKind kind, Guid accountId, HoldPlacement placement);

    /// <summary>A capture as the usage grain sends it to the hold's payer (a copy that arrives late, for example).</summary>
    [Alias("CaptureHold")]
    Task<BillingResult<HoldCaptureReceipt>> CaptureHold(AccountKind kind, Guid accountId, HoldCapture capture);
}

public sealed class TestChargerGrain : Grain, ITestChargerGrain
{
    public Task<BillingResult<UsageReceipt>> Charge(AccountKind kind, Guid accountId, AccountCharge charge) => kind == AccountKind.User
        ? GrainFactory.GetGrain<IUserGrain>(accountId).Charge(charge)
        : GrainFactory.GetGrain<IProjectGrain>(accountId).Charge(charge);

    public Task<BillingResult<HoldView>> PlaceHold(AccountKind kind, Guid accountId, HoldPlacement placement) => kind == AccountKind.User
        ? GrainFactory.GetGrain<IUserGrain>(accountId).PlaceHold(placement)
        : GrainFactory.GetGrain<IProjectGrain>(accountId).PlaceHold(placement);

    public Task<BillingResult<HoldCaptureReceipt>> CaptureHold(AccountKind kind, Guid accountId, HoldCapture capture) => kind == AccountKind.User
        ? GrainFactory.GetGrain<IUserGrain>(accountId).CaptureHold(capture)
        : GrainFactory.GetGrain<IProjectGrain>(accountId).CaptureHold(capture);
}
