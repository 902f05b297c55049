using Billing.Storage;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// Every capture reads its hold. PostgreSQL keeps the plan it chose for a prepared statement; the read used to be
/// <c>hold_id = ANY($1)</c>, whose plan on a new database's small table is a scan of the whole table, kept while the
/// table grew: the hold bench read 14 million hold rows for 5,289 captures.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class HoldReadPlanTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task ReviewDefect_ReadingAHoldUsesItsKeyEvenInThePlanMadeWhileTheTableWasEmpty()
    {
        await using var dataSource = NpgsqlDataSource.Create(Fixture.ConnectionString);
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        // An empty table of the same definition in front of the real one, and the plan a prepared statement keeps.
        await Execute("CREATE TEMP TABLE billing_hold (LIKE public.billing_hold INCLUDING ALL) ON COMMIT DROP");
        await Execute("SET LOCAL plan_cache_mode = force_generic_plan");
        await Execute($"PREPARE read_hold AS {HoldStore.ByIdSql.Replace("$1", "$1::uuid")}");

        await using var explain = new NpgsqlCommand($"EXPLAIN EXECUTE read_hold('{Guid.NewGuid()}')", connection, transaction);
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) plan.Add(reader.GetString(0));
        }

        Assert.Contains(plan, line => line.Contains("Index Scan", StringComparison.Ordinal));
        Assert.DoesNotContain(plan, line => line.Contains("Seq Scan", StringComparison.Ordinal));
        await Execute("DEALLOCATE read_hold");

        async Task Execute(string sql)
        {
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await command.ExecuteNonQueryAsync();
        }
    }
}
