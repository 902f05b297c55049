using Npgsql;

namespace Billing.Cluster.Tests.Infrastructure;

/// <summary>A project paid by its own creator, and a priced model: what a usage needs.</summary>
public sealed record BillingAccounts(Guid UserId, Guid ProjectId, Guid ModelId)
{
    public AiUsage Usage(Guid? usageId = null) => new(usageId ?? Guid.NewGuid(), ProjectId, UserId, ModelId, 1234, 567);

    /// <summary>Initialises a user, a project of theirs (20.0000 USD first-project credit) and, when not given, a priced model.</summary>
    public static async Task<BillingAccounts> CreateAsync(IGrainFactory grains, Guid? modelId = null)
    {
        var model = modelId ?? await CreateModelAsync(grains);
        var user = Guid.NewGuid();
        var project = Guid.NewGuid();
        var userResult = await grains.GetGrain<IUserGrain>(user).Initialize();
        Assert.True(userResult.IsOk, userResult.Problem?.Detail);
        var projectResult = await grains.GetGrain<IProjectGrain>(project).Initialize(user);
        Assert.True(projectResult.IsOk, projectResult.Problem?.Detail);
        return new BillingAccounts(user, project, model);
    }

    public static async Task<Guid> CreateModelAsync(IGrainFactory grains)
    {
        var model = Guid.NewGuid();
        var price = await grains.GetGrain<IModelPricingGrain>(model)
            .AddPrice(new ModelPriceInput(3.00m, 15.00m, "USD", DateTimeOffset.UtcNow.AddMinutes(-1)));
        Assert.True(price.IsOk, price.Problem?.Detail);
        return model;
    }
}

/// <summary>The cluster tests' ledger checks: the kit's <see cref="LedgerInvariants"/>, plus what only a caller knows.</summary>
public static class Ledger
{
    /// <summary>Every ledger invariant holds for the given accounts (each must exist): I1 (balance = sum of history) and the rest.</summary>
    public static Task AssertBalancesEqualHistoryAsync(string connectionString, IReadOnlyCollection<Guid> users, IReadOnlyCollection<Guid> projects) =>
        LedgerInvariants.AssertHoldAsync(connectionString, new LedgerScope(users, projects));

    /// <summary>
    /// I4 and I3 for acknowledged usages: each is a charged <c>usage_record</c>, and the ledger invariants of the
    /// accounts that paid them hold (so each record has its one matching charge row, and no usage id is charged twice).
    /// </summary>
    public static async Task AssertAcknowledgedUsagesChargedOnceAsync(string connectionString, IReadOnlyCollection<Guid> usageIds)
    {
        var payers = new List<(AccountKind Kind, Guid Id)>();
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                "SELECT DISTINCT paid_by, account_id FROM usage_record WHERE usage_id = ANY(@ids) AND account_id IS NOT NULL", connection);
            command.Parameters.AddWithValue("ids", usageIds.ToArray());
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync()) payers.Add((reader.GetString(0) == "project" ? AccountKind.Project : AccountKind.User, reader.GetGuid(1)));
        }

        var snapshot = await LedgerSnapshot.ReadAsync(connectionString, LedgerScope.Of(payers));
        var problems = LedgerInvariants.FindViolations(snapshot).ToList();
        foreach (var id in usageIds)
        {
            if (!snapshot.UsageRecords.TryGetValue(id, out var record) || record.Outcome != "charged")
                problems.Add($"acknowledged usage {id} is {(record is null ? "not recorded" : record.Outcome)}");
        }

        Assert.True(problems.Count == 0, $"{problems.Count} problems with {usageIds.Count} acknowledged usages:\n{string.Join('\n', problems.Take(20))}");
    }
}
