using Billing.Storage;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// Reads by key after a write (every capture reads its hold; settling after a fault or a retry reads holds and usage
/// answers). PostgreSQL keeps the plan it chose for a prepared statement; these reads used to be <c>key = ANY($1)</c>,
/// whose plan on a new database's small table is a scan of the whole table, kept while the table grew: the hold bench
/// read 14 million hold rows for 5,289 captures. With the old texts both plans below were a <c>Seq Scan</c>.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class HoldReadPlanTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public Task ReviewDefect_ReadingAHoldUsesItsKeyEvenInThePlanMadeWhileTheTableWasEmpty() =>
        AssertKeptPlanUsesTheIndex("billing_hold", HoldStore.ByIdSql);

    [Fact]
    public Task ReviewDefect_ReadingAUsageAnswerUsesItsKeyEvenInThePlanMadeWhileTheTableWasEmpty() =>
        AssertKeptPlanUsesTheIndex("usage_record", UsageRecordStore.ByIdSql);

    [Fact]
    public async Task Several_keys_are_read_in_one_round_trip_each_once_and_unknown_ones_left_out()
    {
        var model = await NewModel();
        var user = await NewUser();
        var project = await NewProject(user, balance: 5m);
        var charged = Guid.NewGuid();
        Assert.True((await Usage.RecordAiUsage(new AiUsage(charged, project, user, model, 1_000, 500))).IsOk);
        await using var dataSource = NpgsqlDataSource.Create(Fixture.ConnectionString);
        var store = new UsageRecordStore(dataSource);

        var found = await store.ReadAsync([charged, Guid.NewGuid(), charged]);

        var answer = Assert.Single(found);
        Assert.Equal(charged, answer.Key);
        Assert.Equal(charged, answer.Value.Value!.UsageId);
        Assert.Empty(await store.ReadAsync([]));
    }

    private async Task AssertKeptPlanUsesTheIndex(string table, string byKeySql)
    {
        await using var dataSource = NpgsqlDataSource.Create(Fixture.ConnectionString);
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        // An empty table of the same definition in front of the real one, and the plan a prepared statement keeps.
        await Execute($"CREATE TEMP TABLE {table} (LIKE public.{table} INCLUDING ALL) ON COMMIT DROP");
        await Execute("SET LOCAL plan_cache_mode = force_generic_plan");
        await Execute($"PREPARE read_by_key AS {byKeySql.Replace("$1", "$1::uuid")}");

        await using var explain = new NpgsqlCommand($"EXPLAIN EXECUTE read_by_key('{Guid.NewGuid()}')", connection, transaction);
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) plan.Add(reader.GetString(0));
        }

        Assert.Contains(plan, line => line.Contains("Index Scan", StringComparison.Ordinal));
        Assert.DoesNotContain(plan, line => line.Contains("Seq Scan", StringComparison.Ordinal));
        await Execute("DEALLOCATE read_by_key");

        async Task Execute(string sql)
        {
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await command.ExecuteNonQueryAsync();
        }
    }
}
