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

/// <summary>The ledger checks of the issue, in SQL on the billing tables.</summary>
public static class Ledger
{
    /// <summary>I1: every given account exists and its balance equals the sum of its history amounts.</summary>
    public static async Task AssertBalancesEqualHistoryAsync(string connectionString, IReadOnlyCollection<Guid> users, IReadOnlyCollection<Guid> projects)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await AssertAsync(connection, """
            SELECT a."user", a.balance, COALESCE(SUM(h.amount), 0)
            FROM user_billing a LEFT JOIN user_billing_history h ON h."user" = a."user"
            WHERE a."user" = ANY(@ids) GROUP BY a."user", a.balance
            """, users, "user");
        await AssertAsync(connection, """
            SELECT a.project, a.balance, COALESCE(SUM(h.amount), 0)
            FROM project_billing a LEFT JOIN project_billing_history h ON h.project = a.project
            WHERE a.project = ANY(@ids) GROUP BY a.project, a.balance
            """, projects, "project");

        static async Task AssertAsync(NpgsqlConnection connection, string sql, IReadOnlyCollection<Guid> ids, string kind)
        {
            await using var command = new NpgsqlCommand(sql, connection);
            command.Parameters.AddWithValue("ids", ids.ToArray());
            var seen = 0;
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                seen++;
                var (id, balance, sum) = (reader.GetGuid(0), reader.GetDecimal(1), reader.GetDecimal(2));
                Assert.True(balance == sum, $"{kind} {id}: balance {balance} but its history sums to {sum}");
            }

            Assert.Equal(ids.Count, seen);
        }
    }

    /// <summary>
    /// I4 and I3 for acknowledged usages: each is a charged <c>usage_record</c> and has exactly one charging
    /// history row (amount &lt; 0) across project and user histories.
    /// </summary>
    public static async Task AssertAcknowledgedUsagesChargedOnceAsync(string connectionString, IReadOnlyCollection<Guid> usageIds)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT u.id,
                   (SELECT count(*) FROM usage_record r WHERE r.usage_id = u.id AND r.outcome = 'charged'),
                   (SELECT count(*) FROM project_billing_history h WHERE h.usage_id = u.id AND h.amount < 0)
                 + (SELECT count(*) FROM user_billing_history h WHERE h.usage_id = u.id AND h.amount < 0)
            FROM unnest(@ids) AS u(id)
            """, connection);
        command.Parameters.AddWithValue("ids", usageIds.ToArray());
        var problems = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var (id, records, charges) = (reader.GetGuid(0), reader.GetInt64(1), reader.GetInt64(2));
            if (records != 1 || charges != 1) problems.Add($"{id}: {records} charged usage_record, {charges} charging history rows");
        }

        Assert.True(problems.Count == 0, $"{problems.Count} of {usageIds.Count} acknowledged usages not charged exactly once:\n{string.Join('\n', problems.Take(20))}");
    }
}
