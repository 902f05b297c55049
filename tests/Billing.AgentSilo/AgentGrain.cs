namespace Billing.Agents;

/// <summary>An AI agent of the platform. Key: the agent's id. It lives only on agent silos.</summary>
[Alias("Billing.Agents.IAgentGrain")]
public interface IAgentGrain : IGrainWithGuidKey
{
    /// <summary>Runs one step of the agent and has its model usage charged through <see cref="IUsageGrain"/>.</summary>
    [Alias("RunStep")]
    Task<BillingResult<UsageReceipt>> RunStep(AiUsage usage);

    /// <summary>The silo this agent runs on (for operators and tests).</summary>
    [Alias("GetSilo")]
    Task<string> GetSilo();

    // What a buggy or compromised agent could try from inside the cluster (DESIGN.md "Trust boundary"): the
    // account grains must refuse every one of these, since an agent may record usage but never move money itself.

    [Alias("TryCreditUser")]
    Task<BillingResult<AccountView>> TryCreditUser(Guid userId, AccountCredit credit);

    [Alias("TryCreditProject")]
    Task<BillingResult<AccountView>> TryCreditProject(Guid projectId, AccountCredit credit);

    [Alias("TryChargeProject")]
    Task<BillingResult<UsageReceipt>> TryChargeProject(Guid projectId, AccountCharge charge);

    [Alias("TryChargeUser")]
    Task<BillingResult<UsageReceipt>> TryChargeUser(Guid userId, AccountCharge charge);

    /// <summary>Writes a project's "paid by the user" marker for a usage that no user paid.</summary>
    [Alias("TryRecordUserFallback")]
    Task TryRecordUserFallback(Guid projectId, UsageReceipt userReceipt, Guid modelId);

    [Alias("TryChangeUserPlan")]
    Task<BillingResult<AccountView>> TryChangeUserPlan(Guid userId, PlanChange plan);

    [Alias("TryChangeProjectPlan")]
    Task<BillingResult<AccountView>> TryChangeProjectPlan(Guid projectId, PlanChange plan);

    /// <summary>Would mint a user account with its 10.0000 USD signup credit.</summary>
    [Alias("TryInitializeUser")]
    Task<BillingResult<AccountInitialized>> TryInitializeUser(Guid userId);
}

public sealed partial class AgentGrain(ILogger<AgentGrain> logger) : Grain, IAgentGrain
{
    private int steps;

    public async Task<BillingResult<UsageReceipt>> RunStep(AiUsage usage)
    {
        // The "work" of the step would happen here; its cost is charged in-cluster, on a billing silo.
        var result = await GrainFactory.GetGrain<IUsageGrain>(0).RecordAiUsage(usage);
        steps++;
        if (result.IsOk) LogCharged(logger, this.GetPrimaryKey(), steps, usage.UsageId, result.Value!.Cost, result.Value.Currency);
        else LogRefused(logger, this.GetPrimaryKey(), usage.UsageId, result.Problem!.Status);
        return result;
    }

    public Task<string> GetSilo() => Task.FromResult(this.RuntimeIdentity);

    // The trust-boundary probes: each calls the account grain directly, as this grain (the caller the account sees).

    public Task<BillingResult<AccountView>> TryCreditUser(Guid userId, AccountCredit credit) =>
        GrainFactory.GetGrain<IUserGrain>(userId).Credit(credit);

    public Task<BillingResult<AccountView>> TryCreditProject(Guid projectId, AccountCredit credit) =>
        GrainFactory.GetGrain<IProjectGrain>(projectId).Credit(credit);

    public Task<BillingResult<UsageReceipt>> TryChargeProject(Guid projectId, AccountCharge charge) =>
        GrainFactory.GetGrain<IProjectGrain>(projectId).Charge(charge);

    public Task<BillingResult<UsageReceipt>> TryChargeUser(Guid userId, AccountCharge charge) =>
        GrainFactory.GetGrain<IUserGrain>(userId).Charge(charge);

    public Task TryRecordUserFallback(Guid projectId, UsageReceipt userReceipt, Guid modelId) =>
        GrainFactory.GetGrain<IProjectGrain>(projectId).RecordUserFallback(userReceipt, modelId);

    public Task<BillingResult<AccountView>> TryChangeUserPlan(Guid userId, PlanChange plan) =>
        GrainFactory.GetGrain<IUserGrain>(userId).ChangePlan(plan);

    public Task<BillingResult<AccountView>> TryChangeProjectPlan(Guid projectId, PlanChange plan) =>
        GrainFactory.GetGrain<IProjectGrain>(projectId).ChangePlan(plan);

    public Task<BillingResult<AccountInitialized>> TryInitializeUser(Guid userId) => GrainFactory.GetGrain<IUserGrain>(userId).Initialize();

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent {AgentId} step {Step}: usage {UsageId} charged {Cost} {Currency}")]
    private static partial void LogCharged(ILogger logger, Guid agentId, int step, Guid usageId, decimal cost, string currency);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Agent {AgentId}: usage {UsageId} refused ({Status})")]
    private static partial void LogRefused(ILogger logger, Guid agentId, Guid usageId, BillingStatus status);
}
