using Billing.Accounts;
using Billing.Storage;
using Billing.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// The usage summary's rollup on the account row (migration 0014, <see cref="UsageRollup"/>): an account's usage rows of
/// one hour, model and currency add up on the account; another hour or model closes them into <c>usage_hourly</c> in the
/// same statement. Every test's accounts are also checked against their history rows by <see cref="BillingTestBase"/>.
/// On the cluster whose clock may move: a test moves it an hour on, and each starts just after an hour boundary.
/// </summary>
[Collection(ClockClusterCollection.Name)]
public sealed class UsageRollupTests(ClockClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task Usage_adds_up_on_the_account_until_another_hour_or_model_closes_it_into_usage_hourly()
    {
        var hour = ToTheNextHour();
        var (modelA, modelB) = (await NewModel(1.00m, 2.00m), await NewModel(3.00m, 5.00m));
        var project = await NewProject(balance: 100m);
        var user = (await View(AccountKind.Project, project)).CreatorId!.Value;
        async Task Charge(Guid model, long input, long output) =>
            Assert.True((await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, input, output))).IsOk);

        for (var i = 1; i <= 3; i++) await Charge(modelA, 1000 * i, 10);
        Assert.Empty(await Closed(project));
        Assert.Equal((hour, modelA, 3L, 6000m, 30m), await Open(project));

        await Charge(modelB, 7, 7);                  // another model: model A's hour is closed
        await Charge(modelA, 1, 1);                  // and back: model B's
        Assert.Equal([(hour, modelA, 3L, 6000m, 30m), (hour, modelB, 1L, 7m, 7m)], await Closed(project));
        Assert.Equal((hour, modelA, 1L, 1m, 1m), await Open(project));

        Fixture.Clock.Advance(TimeSpan.FromHours(1)); // the next hour: model A's first hour closes, added to its row
        await Charge(modelA, 2, 2);
        Assert.Equal([(hour, modelA, 4L, 6001m, 31m), (hour, modelB, 1L, 7m, 7m)], await Closed(project));
        Assert.Equal((hour.AddHours(1), modelA, 1L, 2m, 2m), await Open(project));
        Assert.Empty(await LedgerInvariants.FindUsageRollupViolationsAsync(Fixture.ConnectionString, new LedgerScope([], [project])));

        // The summary reads both: whole hours from usage_hourly and the open hour, each exactly its rows' sums.
        var summary = new UsageSummaryStore(NpgsqlDataSource.Create(Fixture.ConnectionString));
        var buckets = await summary.SumAsync(AccountKind.Project, project, hour, hour.AddHours(2), TimeSpan.FromHours(1), groupByModel: true);
        Assert.Equal([(hour, modelA, 4L, 6001L), (hour, modelB, 1L, 7L), (hour.AddHours(1), modelA, 1L, 2L)],
            buckets.Select(b => (b.Start, b.ModelId!.Value, b.Requests, b.InputTokens)).OrderBy(b => b.Start).ThenBy(b => b.Item2 == modelA ? 0 : 1));
        var cost = await Scalar("SELECT (sum(quota_used - amount) * 1000000)::bigint FROM project_billing_history WHERE project = $1 AND reason = 'ai_usage'", project);
        Assert.Equal(cost, (long)(buckets.Sum(b => b.Cost) * 1_000_000m));
    }

    [Fact]
    public async Task A_users_personal_usage_and_the_fallbacks_it_pays_add_up_on_the_user_and_a_projects_marker_does_not()
    {
        var hour = ToTheNextHour();
        var model = await NewModel(1_000_000m, 0m); // a dollar per input token
        var user = await NewUser(balance: 50m);
        var project = await NewProject(user, balance: 0m);
        Assert.True((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 2, 0))).IsOk);
        var fallback = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 3, 0));
        Assert.Equal(PayingAccount.User, fallback.Value!.DeductedFrom);

        Assert.Equal((hour, model, 2L, 5m, 0m), await Open(user, AccountKind.User));
        // The project's zero fallback marker is not its spend: nothing of this model in its rollup.
        Assert.NotEqual(model, (await OpenOrNull(project, AccountKind.Project))?.Item2);
        Assert.DoesNotContain(await Closed(project), r => r.Item2 == model);
    }

    /// <summary>
    /// Moves the clock to a second past the next whole hour, and returns that hour: the test's rows all fall in it
    /// (until it moves the clock itself), as no real hour boundary can pass in the seconds a test takes.
    /// </summary>
    private DateTimeOffset ToTheNextHour()
    {
        var next = UsageRollup.HourOf(Fixture.Clock.GetUtcNow()).AddHours(1);
        Fixture.Clock.Advance(next.AddSeconds(1) - Fixture.Clock.GetUtcNow());
        Assert.Equal(next, UsageRollup.HourOf(Fixture.Clock.GetUtcNow()));
        return next;
    }

    private async Task<List<(DateTimeOffset, Guid, long, decimal, decimal)>> Closed(Guid project)
    {
        await using var db = Fixture.OpenDatabase();
        await using var command = new NpgsqlCommand("""
            SELECT hour, model_id, requests, input_tokens, output_tokens FROM usage_hourly
            WHERE scope = 'project' AND account = $1 ORDER BY hour, requests DESC
            """, db);
        command.Parameters.Add(new NpgsqlParameter { Value = project });
        var rows = new List<(DateTimeOffset, Guid, long, decimal, decimal)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            rows.Add((reader.GetFieldValue<DateTimeOffset>(0), reader.GetGuid(1), reader.GetInt64(2), reader.GetDecimal(3), reader.GetDecimal(4)));
        return rows;
    }

    private async Task<(DateTimeOffset, Guid, long, decimal, decimal)> Open(Guid id, AccountKind kind = AccountKind.Project) =>
        await OpenOrNull(id, kind) ?? throw new Xunit.Sdk.XunitException($"{kind} {id} has no open usage hour");

    private async Task<(DateTimeOffset, Guid, long, decimal, decimal)?> OpenOrNull(Guid id, AccountKind kind)
    {
        var table = AccountTable.For(kind);
        await using var db = Fixture.OpenDatabase();
        await using var command = new NpgsqlCommand($"""
            SELECT usage_hour, usage_hour_model_id, usage_hour_requests, usage_hour_input_tokens, usage_hour_output_tokens
            FROM {table.Accounts} WHERE {table.Key} = $1 AND usage_hour IS NOT NULL
            """, db);
        command.Parameters.Add(new NpgsqlParameter { Value = id });
        await using var reader = await command.ExecuteReaderAsync();
        if (!await reader.ReadAsync()) return null;
        return (reader.GetFieldValue<DateTimeOffset>(0), reader.GetGuid(1), reader.GetInt64(2), reader.GetDecimal(3), reader.GetDecimal(4));
    }
}
