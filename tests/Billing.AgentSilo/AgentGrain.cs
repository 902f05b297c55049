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

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent {AgentId} step {Step}: usage {UsageId} charged {Cost} {Currency}")]
    private static partial void LogCharged(ILogger logger, Guid agentId, int step, Guid usageId, decimal cost, string currency);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Agent {AgentId}: usage {UsageId} refused ({Status})")]
    private static partial void LogRefused(ILogger logger, Guid agentId, Guid usageId, BillingStatus status);
}
