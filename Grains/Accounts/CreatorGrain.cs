using Billing.Hosting;

namespace Billing.Accounts;

/// <summary>Which project took its creator's one first-project credit. Orleans grain storage (ETag-guarded) on PostgreSQL.</summary>
public sealed class CreatorGrain(
    [PersistentState("creator", BillingSiloBuilderExtensions.GrainStorageName)] IPersistentState<CreatorState> state)
    : Grain, ICreatorGrain
{
    public async Task<bool> ClaimFirstProjectCredit(Guid projectId)
    {
        if (state.State.FirstProjectId is { } first) return first == projectId;
        state.State.FirstProjectId = projectId;
        try
        {
            await state.WriteStateAsync(); // a stale second activation fails here (ETag) instead of granting twice
        }
        catch
        {
            state.State.FirstProjectId = null;
            DeactivateOnIdle(); // the next activation reads what the other one stored
            throw;
        }

        return true;
    }
}

[GenerateSerializer, Alias("Billing.CreatorState")]
public sealed class CreatorState
{
    [Id(0)]
    public Guid? FirstProjectId { get; set; }
}
