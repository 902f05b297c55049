namespace Billing;

/// <summary>Operations both kinds of account have. Key: the user or project id.</summary>
[Alias("Billing.IAccountGrain")]
public interface IAccountGrain : IGrainWithGuidKey, IHoldingAccountGrain, ICreditGrants
{
    /// <summary>The account, or <see cref="BillingStatus.AccountNotFound"/> when it was never initialised.</summary>
    [Alias("GetAccount")]
    Task<BillingResult<AccountView>> GetAccount();

    /// <summary>Charges a usage (used by <see cref="IUsageGrain"/>); idempotent by usage id across accounts.</summary>
    [Alias("Charge")]
    Task<BillingResult<UsageReceipt>> Charge(AccountCharge charge);

    /// <summary>Adds credit; resolves the account's open insufficient-balance errors.</summary>
    [Alias("Credit")]
    Task<BillingResult<AccountView>> Credit(AccountCredit credit);

    [Alias("ChangePlan")]
    Task<BillingResult<AccountView>> ChangePlan(PlanChange plan);

    [Alias("GetHistory")]
    Task<BillingResult<HistoryPage>> GetHistory(HistoryQuery query);
}

/// <summary>A user's personal account.</summary>
[Alias("Billing.IUserGrain")]
public interface IUserGrain : IAccountGrain
{
    /// <summary>Creates the account with the 10.0000 USD signup credit; later calls return it unchanged.</summary>
    [Alias("Initialize")]
    Task<BillingResult<AccountInitialized>> Initialize();
}

/// <summary>A project's account.</summary>
[Alias("Billing.IProjectGrain")]
public interface IProjectGrain : IAccountGrain
{
    /// <summary>
    /// Creates the account: 20.0000 USD for its creator's first project, else 0. Later calls with the same
    /// creator return it unchanged; another creator is <see cref="BillingStatus.CreatorConflict"/>.
    /// </summary>
    [Alias("Initialize")]
    Task<BillingResult<AccountInitialized>> Initialize(Guid creatorId);

    /// <summary>Writes the project's zero-amount row for a usage its user paid (idempotent by usage id).</summary>
    [Alias("RecordUserFallback")]
    Task RecordUserFallback(UsageReceipt userReceipt, Guid modelId);
}

/// <summary>The entry point for agents: prices usage and has the right account pay. Stateless; use key 0.</summary>
[Alias("Billing.IUsageGrain")]
public interface IUsageGrain : IGrainWithIntegerKey
{
    [Alias("RecordAiUsage")]
    Task<BillingResult<UsageReceipt>> RecordAiUsage(AiUsage usage);

    [Alias("RecordPersonalUsage")]
    Task<BillingResult<UsageReceipt>> RecordPersonalUsage(PersonalUsage usage);

    [Alias("CheckBalance")]
    Task<BillingResult<BalanceCheckResult>> CheckBalance(BalanceCheck check);

    /// <summary>Reserves what a call can cost at most (Holds.cs); a refusal for balance stores one billing error.</summary>
    [Alias("PlaceHold")]
    Task<BillingResult<HoldView>> PlaceHold(HoldRequest hold);

    /// <summary>
    /// As <see cref="PlaceHold"/>, saying whether this call placed the hold or an earlier copy of the same request did
    /// (<see cref="HoldPlaced.Created"/>): never two calls for one hold id. A call retried after its answer was lost
    /// (the payer's silo failed after the commit) answers false for the hold it placed.
    /// </summary>
    [Alias("PlaceHoldOnce")]
    Task<BillingResult<HoldPlaced>> PlaceHoldOnce(HoldRequest hold);

    /// <summary>Charges what a held call used to the hold's payer, at its pinned price, and releases the rest.</summary>
    [Alias("CaptureHold")]
    Task<BillingResult<HoldCaptureReceipt>> CaptureHold(HoldCapture capture);

    [Alias("VoidHold")]
    Task<BillingResult<HoldView>> VoidHold(Guid holdId);

    [Alias("GetHold")]
    Task<BillingResult<HoldView>> GetHold(Guid holdId);
}

/// <summary>Prices of one model over time. Key: the model id.</summary>
[Alias("Billing.IModelPricingGrain")]
public interface IModelPricingGrain : IGrainWithGuidKey
{
    [Alias("AddPrice")]
    Task<BillingResult<ModelPrice>> AddPrice(ModelPriceInput price);

    [Alias("GetPricing")]
    Task<ModelPricing> GetPricing();

    /// <summary>The price in effect at <paramref name="at"/>, or null.</summary>
    [Alias("GetPriceAt")]
    Task<ModelPrice?> GetPriceAt(DateTimeOffset at);
}

/// <summary>Reads and resolves stored billing errors. Stateless; use key 0.</summary>
[Alias("Billing.IBillingErrorsGrain")]
public interface IBillingErrorsGrain : IGrainWithIntegerKey
{
    [Alias("List")]
    Task<BillingResult<BillingErrorPage>> List(BillingErrorQuery query);

    [Alias("Resolve")]
    Task<BillingResult<BillingErrorView>> Resolve(Guid billingErrorId);
}

/// <summary>Health of the billing core as the cluster sees it. Stateless; use key 0.</summary>
[Alias("Billing.IBillingHealthGrain")]
public interface IBillingHealthGrain : IGrainWithIntegerKey
{
    /// <summary>Throws when the billing database cannot be reached.</summary>
    [Alias("CheckDatabase")]
    Task CheckDatabase();
}
