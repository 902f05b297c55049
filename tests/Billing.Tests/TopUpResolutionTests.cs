using Billing.Accounts;
using Billing.Storage;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// A top-up resolves the account's open insufficient-balance errors, however many a dry spell left: at most
/// <see cref="LedgerCommit.MaxErrorsResolvedPerWrite"/> per write (its own, then writes of their own), all of them
/// before it is answered, each with one <c>billing_error.resolved</c> event (E1, also checked after every test).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TopUpResolutionTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    private const int Refusals = 2_500;

    [Theory]
    [InlineData("credit")]
    [InlineData("grant")]
    public async Task Thousands_of_open_billing_errors_are_resolved_by_one_top_up_in_writes_of_at_most_1000_each_with_one_event(string topUp)
    {
        var model = await NewModel(1_000_000m, 0.0001m); // 1 input token costs exactly 1
        var user = await NewUser(balance: 1m);
        var refusals = await Task.WhenAll(Enumerable.Range(0, 64).Select(async lane =>
        {
            var refused = 0;
            for (var i = lane; i < Refusals; i += 64)
            {
                var answer = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 5, 0));
                if (answer.Problem?.Status == BillingStatus.InsufficientBalance) refused++;
            }

            return refused;
        }));
        Assert.Equal(Refusals, refusals.Sum());
        Assert.Equal(Refusals, await OpenErrors(user));

        if (topUp == "credit")
            Assert.True((await Account(AccountKind.User, user).Credit(new AccountCredit(20m, HistoryReasons.TopUp, Guid.NewGuid()))).IsOk);
        else
            Assert.True((await Grains.GetGrain<IUserGrain>(user).Grant(new GrantInput(Guid.NewGuid(), 20m, GrantCategory.Paid, 0, null, null, null))).IsOk);

        // Answered only once every error is resolved, each once, with the account's figures after the top-up.
        Assert.Equal(0, await OpenErrors(user));
        Assert.Equal(Refusals, await Scalar("SELECT count(*) FROM billing_error WHERE scope_id = $1 AND resolved", user));
        Assert.Equal(Refusals, await Scalar(
            "SELECT count(DISTINCT billing_error_id) FROM billing_event WHERE scope_id = $1 AND type = 'billing_error.resolved'", user));
        Assert.Equal(Refusals, await Scalar("SELECT count(*) FROM billing_event WHERE scope_id = $1 AND type = 'billing_error.resolved'", user));
        Assert.Equal(1, await Scalar(
            "SELECT count(DISTINCT (data->>'balance')::numeric) FROM billing_event WHERE scope_id = $1 AND type = 'billing_error.resolved'", user));
        Assert.Equal(21, await Scalar(
            "SELECT min((data->>'balance')::numeric) FROM billing_event WHERE scope_id = $1 AND type = 'billing_error.resolved'", user));

        // No transaction resolved more than the cap: the top-up's own write the oldest 1,000, then 1,000 and 500.
        Assert.Equal(LedgerCommit.MaxErrorsResolvedPerWrite, await Scalar(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM billing_event WHERE scope_id = $1 AND type = 'billing_error.resolved' GROUP BY txid) w", user));
        Assert.Equal(3, await Scalar(
            "SELECT count(DISTINCT txid) FROM billing_event WHERE scope_id = $1 AND type = 'billing_error.resolved'", user));
        Assert.Equal(LedgerCommit.MaxErrorsResolvedPerWrite, await Scalar("""
            SELECT count(*) FROM (SELECT id FROM billing_error WHERE scope_id = $1 ORDER BY seq LIMIT 1000) oldest
            JOIN billing_event ev ON ev.billing_error_id = oldest.id AND ev.type = 'billing_error.resolved'
            WHERE ev.txid = (SELECT min(txid) FROM billing_event WHERE scope_id = $1 AND type = 'billing_error.resolved')
            """, user));
        Assert.Equal(21m, (await View(AccountKind.User, user)).Balance);
    }

    [Fact]
    public async Task The_writes_after_a_top_up_resolve_only_the_errors_created_by_its_time()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 1m);
        var errors = new List<Guid>();
        for (var i = 0; i < 3; i++)
            errors.Add((await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 5, 0))).Problem!.BillingErrorId!.Value);
        DateTimeOffset secondCreatedAt;
        await using (var connection = Fixture.OpenDatabase())
        await using (var read = new NpgsqlCommand("SELECT created_at FROM billing_error WHERE id = $1", connection) { Parameters = { new() { Value = errors[1] } } })
        await using (var reader = await read.ExecuteReaderAsync())
        {
            await reader.ReadAsync();
            secondCreatedAt = reader.GetFieldValue<DateTimeOffset>(0);
        }

        // The write the account sends for what a top-up at the second error's time left (ResolveErrorsOperation),
        // sent here straight to the database, with the grain out of the way.
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IUserGrain>(user));
        await using var dataSource = NpgsqlDataSource.Create(Fixture.ConnectionString);
        var account = (await new LedgerStore(dataSource).LoadAsync(AccountTable.Users, user))!;
        var batch = new LedgerBatch(account, DateTimeOffset.UtcNow);
        batch.ResolveErrors(createdBy: secondCreatedAt);
        var commit = batch.ToCommit();
        await using (var write = dataSource.CreateBatch())
        {
            write.BatchCommands.Add(LedgerStatements.Commit(AccountKind.User, LedgerStatements.ShapeOf(commit)).BatchCommand(new LedgerCommitGroup([commit])));
            Assert.Equal(user, (Guid)(await write.ExecuteScalarAsync())!);
        }

        Assert.Equal(1, await OpenErrors(user));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_error WHERE id = $1 AND NOT resolved", errors[2]));
        foreach (var resolved in errors.Take(2))
            Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_event WHERE billing_error_id = $1 AND type = 'billing_error.resolved'", resolved));
        Assert.Equal(1m, (await View(AccountKind.User, user)).Balance); // it moved no money
    }

    private Task<long> OpenErrors(Guid account) =>
        Scalar("SELECT count(*) FROM billing_error WHERE scope_id = $1 AND error_type = 'insufficient_balance' AND NOT resolved", account);
}
