using Billing.Testing;
using Npgsql;

namespace Billing.Tests;

/// <summary>Setup helpers and the ledger checks every scenario ends with (the kit's <see cref="LedgerInvariants"/>).</summary>
public abstract class BillingTestBase(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly HashSet<(AccountKind Kind, Guid Id)> touched = [];

    protected ClusterFixture Fixture => fixture;

    protected IGrainFactory Grains => fixture.Grains;

    protected IUsageGrain Usage => Grains.GetGrain<IUsageGrain>(0);

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>After every test: the ledger invariants hold for the touched accounts, and each grain agrees with the database.</summary>
    public async Task DisposeAsync()
    {
        // Scoped: the test classes share one database and run side by side.
        var snapshot = await LedgerSnapshot.ReadAsync(fixture.ConnectionString, LedgerScope.Of(touched), fixture.Clock.GetUtcNow());
        var violations = LedgerInvariants.FindViolations(snapshot)
            .Concat(await LedgerInvariants.FindEventViolationsAsync(fixture.ConnectionString, LedgerScope.Of(touched))) // E1
            .Concat(await LedgerInvariants.FindUsageRollupViolationsAsync(fixture.ConnectionString, LedgerScope.Of(touched))).ToList();
        Assert.True(violations.Count == 0, string.Join('\n', violations));
        foreach (var (kind, id) in touched) await AssertGrainMatchesDatabase(snapshot.Accounts[(kind, id)]);
    }

    protected async Task<Guid> NewModel(decimal inputPrice = 3.00m, decimal outputPrice = 15.00m, string currency = "USD")
    {
        var model = Guid.NewGuid();
        var added = await Grains.GetGrain<IModelPricingGrain>(model)
            .AddPrice(new ModelPriceInput(inputPrice, outputPrice, currency, DateTimeOffset.UtcNow.AddMinutes(-1)));
        Assert.True(added.IsOk, added.Problem?.Detail);
        return model;
    }

    protected async Task<Guid> NewUser(decimal? balance = null)
    {
        var user = Guid.NewGuid();
        var result = await Grains.GetGrain<IUserGrain>(user).Initialize();
        Assert.True(result.IsOk && result.Value!.Created);
        Touch(AccountKind.User, user);
        if (balance is { } wanted) await SetBalance(AccountKind.User, user, 10.0000m, wanted);
        return user;
    }

    protected async Task<Guid> NewProject(Guid? creator = null, decimal? balance = null)
    {
        var project = Guid.NewGuid();
        var result = await Grains.GetGrain<IProjectGrain>(project).Initialize(creator ?? Guid.NewGuid());
        Assert.True(result.IsOk && result.Value!.Created);
        Touch(AccountKind.Project, project);
        if (balance is { } wanted) await SetBalance(AccountKind.Project, project, result.Value!.Account.Balance, wanted);
        return project;
    }

    protected void Touch(AccountKind kind, Guid id) => touched.Add((kind, id));

    protected IAccountGrain Account(AccountKind kind, Guid id) =>
        kind == AccountKind.User ? Grains.GetGrain<IUserGrain>(id) : Grains.GetGrain<IProjectGrain>(id);

    protected async Task<AccountView> View(AccountKind kind, Guid id)
    {
        var account = await Account(kind, id).GetAccount();
        Assert.True(account.IsOk, account.Problem?.Detail);
        return account.Value!;
    }

    protected async Task<HistoryEntry[]> History(AccountKind kind, Guid id)
    {
        var page = await Account(kind, id).GetHistory(new HistoryQuery(500, null));
        Assert.True(page.IsOk, page.Problem?.Detail);
        return page.Value!.Items;
    }

    protected async Task<long> Scalar(string sql, params object[] parameters)
    {
        await using var connection = Fixture.OpenDatabase();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters) command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    protected Task<long> BillingErrorCount(Guid scopeId) => Scalar("SELECT count(*) FROM billing_error WHERE scope_id = $1", scopeId);

    /// <summary>Tops up or spends down to an exact balance, through the grains like any caller.</summary>
    private async Task SetBalance(AccountKind kind, Guid id, decimal current, decimal wanted)
    {
        if (wanted > current)
        {
            var credited = await Account(kind, id).Credit(new AccountCredit(wanted - current, HistoryReasons.TopUp, Guid.NewGuid()));
            Assert.True(credited.IsOk);
        }
        else if (wanted < current)
        {
            // Spend the difference as real usage through IUsageGrain (an account grain takes charges from the
            // billing grains only): 1,000,000 input tokens at (current - wanted) per million cost exactly that.
            var model = Guid.NewGuid();
            var priced = await Grains.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput(current - wanted, 0.0001m, "USD", DateTimeOffset.UtcNow.AddMinutes(-1)));
            Assert.True(priced.IsOk, priced.Problem?.Detail);
            var spent = kind == AccountKind.User
                ? await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), id, model, 1_000_000, 0))
                : await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), id, Guid.NewGuid(), model, 1_000_000, 0));
            Assert.True(spent.IsOk, spent.Problem?.Detail);
            Assert.Equal(current - wanted, spent.Value!.Cost);
        }

        Assert.Equal(wanted, (await View(kind, id)).Balance);
    }

    /// <summary>I1 in the grain: its view is the database's account, and its history explains its balance row by row.</summary>
    private async Task AssertGrainMatchesDatabase(AccountRow stored)
    {
        var view = await View(stored.Kind, stored.Id);
        Assert.Equal(stored.Balance, view.Balance);
        Assert.Equal(stored.MonthUsed, view.MonthUsed);

        var rows = (await History(stored.Kind, stored.Id)).Reverse().ToArray();
        var running = 0m;
        foreach (var row in rows)
        {
            running += row.Amount;
            Assert.Equal(running, row.BalanceAfter);
        }
    }
}
