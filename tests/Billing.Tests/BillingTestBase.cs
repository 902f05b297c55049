using Npgsql;

namespace Billing.Tests;

/// <summary>Setup helpers and the ledger checks every scenario ends with (invariants I1, I2 and I3).</summary>
public abstract class BillingTestBase(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly HashSet<(AccountKind Kind, Guid Id)> touched = [];

    protected ClusterFixture Fixture => fixture;

    protected IGrainFactory Grains => fixture.Grains;

    protected IUsageGrain Usage => Grains.GetGrain<IUsageGrain>(0);

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>After every test: each touched account balances, in the database and in its grain.</summary>
    public async Task DisposeAsync()
    {
        foreach (var (kind, id) in touched) await AssertLedgerBalances(kind, id);
        await AssertUsageIdsChargedOnce();
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

    protected async Task AssertLedgerBalances(AccountKind kind, Guid id)
    {
        var (accounts, key, history) = kind == AccountKind.User
            ? ("user_billing", "\"user\"", "user_billing_history")
            : ("project_billing", "project", "project_billing_history");
        await using var connection = Fixture.OpenDatabase();
        await using var command = new NpgsqlCommand($"""
            SELECT a.balance, a.month_used, a.monthly_quota, a.version,
                   COALESCE(SUM(h.amount), 0), COALESCE(SUM(h.quota_used), 0), count(h.uid), COALESCE(max(h.seq), 0)
            FROM {accounts} a LEFT JOIN {history} h ON h.{key} = a.{key}
            WHERE a.{key} = $1
            GROUP BY a.balance, a.month_used, a.monthly_quota, a.version
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = id });
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"{kind} {id} has no account row");
        var (balance, monthUsed, quota, version) = (reader.GetDecimal(0), reader.GetDecimal(1), reader.GetDecimal(2), reader.GetInt64(3));
        Assert.Equal(balance, reader.GetDecimal(4));          // I1 in the database
        Assert.Equal(monthUsed, reader.GetDecimal(5));
        Assert.Equal(version, reader.GetInt64(6));           // rows numbered 1…version, none missing
        Assert.Equal(version, reader.GetInt64(7));
        Assert.True(balance >= 0 && monthUsed >= 0 && monthUsed <= Math.Max(quota, 0)); // I2

        var view = await View(kind, id);                      // I1 in the grain
        Assert.Equal(balance, view.Balance);
        Assert.Equal(monthUsed, view.MonthUsed);

        var rows = (await History(kind, id)).Reverse().ToArray();
        var running = 0m;
        foreach (var row in rows)
        {
            running += row.Amount;
            Assert.Equal(running, row.BalanceAfter);          // every row explains its balance
        }
    }

    /// <summary>I3: no usage id is charged twice, across projects and users.</summary>
    private async Task AssertUsageIdsChargedOnce()
    {
        var duplicates = await Scalar("""
            SELECT count(*) FROM (
                SELECT usage_id FROM (
                    SELECT usage_id FROM user_billing_history WHERE usage_id IS NOT NULL AND amount + quota_used <> 0
                    UNION ALL
                    SELECT usage_id FROM project_billing_history WHERE usage_id IS NOT NULL AND reason = 'ai_usage') charges
                GROUP BY usage_id HAVING count(*) > 1) d
            """);
        Assert.Equal(0, duplicates);
    }
}
