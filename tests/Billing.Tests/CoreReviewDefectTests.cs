using System.Diagnostics.Metrics;
using Billing.Accounts;
using Billing.Diagnostics;
using Billing.Hosting;
using Billing.Storage;
using Billing.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Billing.Tests;

/// <summary>Issue 9, the account grains' group commit and the ledger writer: defects 7, 8, 9, 10, 11 and 15.</summary>
[Collection(ClusterCollection.Name)]
public sealed class CoreReviewDefectTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    private ITestChargerGrain Charger => Grains.GetGrain<ITestChargerGrain>(0);

    [Fact]
    public async Task ReviewDefect07_ChargeRefusesNegativeCost()
    {
        var model = await NewModel();
        var user = await NewUser();
        Assert.True((await Grains.GetGrain<IUserGrain>(user).ChangePlan(new PlanChange(true, 5m))).IsOk);
        var used = await Charger.Charge(AccountKind.User, user, PersonalCharge(3m, model));
        Assert.True(used.IsOk, used.Problem?.Detail);
        Assert.Equal(3m, (await View(AccountKind.User, user)).MonthUsed);

        // A negative cost would have given the pro account its quota back for nothing.
        var negative = await Charger.Charge(AccountKind.User, user, PersonalCharge(-3m, model));

        Assert.Equal(BillingStatus.InvalidInput, negative.Problem?.Status);
        var account = await View(AccountKind.User, user);
        Assert.Equal(3m, account.MonthUsed);
        Assert.Equal(10m, account.Balance);
    }

    [Fact]
    public async Task ReviewDefect07_ChargeValidatesReasonCurrencyAndIds()
    {
        var model = await NewModel();
        var user = await NewUser();
        var project = await NewProject();
        AccountCharge[] userCharges =
        [
            PersonalCharge(1m, model) with { Reason = HistoryReasons.TopUp },
            PersonalCharge(1m, model) with { Reason = HistoryReasons.AiUsage }, // a project's reason
            PersonalCharge(1m, model) with { Currency = "usd" },
            PersonalCharge(1m, model) with { Currency = "US" },
            PersonalCharge(1m, model) with { UsageId = Guid.Empty },
            PersonalCharge(1m, model) with { ModelId = Guid.Empty },
            PersonalCharge(1m, model) with { InputTokens = -1 },
        ];
        foreach (var charge in userCharges)
        {
            Assert.Equal(BillingStatus.InvalidInput, (await Charger.Charge(AccountKind.User, user, charge)).Problem?.Status);
        }

        var projectCharge = PersonalCharge(1m, model) with { Reason = HistoryReasons.AiUsagePersonal };
        Assert.Equal(BillingStatus.InvalidInput, (await Charger.Charge(AccountKind.Project, project, projectCharge)).Problem?.Status);
        Assert.Equal(1, (await View(AccountKind.User, user)).Version);
        Assert.Equal(1, (await View(AccountKind.Project, project)).Version);
    }

    [Fact]
    public async Task ReviewDefect07_AgentGrainCannotCreditChargeOrReplanAnAccount()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var project = await NewProject(balance: 0m);
        var agent = Grains.GetGrain<IRogueAgentGrain>(Guid.NewGuid());

        Assert.Equal(BillingStatus.Forbidden, (await agent.CreditUser(user, 1_000m)).Problem?.Status);
        Assert.Equal(BillingStatus.Forbidden, (await agent.CreditUserOffScheduler(user, 1_000m)).Problem?.Status);
        Assert.Equal(BillingStatus.Forbidden, (await agent.CreditProject(project, 1_000m)).Problem?.Status);
        Assert.Equal(BillingStatus.Forbidden, (await agent.ChargeUser(user, PersonalCharge(1m, model))).Problem?.Status);
        Assert.Equal(BillingStatus.Forbidden, (await agent.ChangeUserPlan(user, new PlanChange(true, 1_000m))).Problem?.Status);
        Assert.Equal(BillingStatus.Forbidden, (await agent.InitializeUser(Guid.NewGuid())).Problem?.Status);

        // What an agent may do: read, and record usage through IUsageGrain.
        Assert.Equal(10m, (await agent.ReadUser(user)).Value!.Balance);
        var usage = await agent.RecordUsage(new PersonalUsage(Guid.NewGuid(), user, model, 2, 0));
        Assert.True(usage.IsOk, usage.Problem?.Detail);
        var account = await View(AccountKind.User, user);
        Assert.Equal(8m, account.Balance);
        Assert.False(account.IsPro);
        Assert.Equal(0m, (await View(AccountKind.Project, project)).Balance);

        // The gateway (a cluster client) still credits and changes plans.
        Assert.True((await Grains.GetGrain<IUserGrain>(user).Credit(new AccountCredit(2m, HistoryReasons.TopUp, Guid.NewGuid()))).IsOk);
        Assert.True((await Grains.GetGrain<IUserGrain>(user).ChangePlan(new PlanChange(true, 1m))).IsOk);
    }

    [Fact]
    public async Task ReviewDefect_An_agent_grain_cannot_reprice_a_model_touch_webhook_endpoints_or_resolve_billing_errors()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 0m);
        var agent = Grains.GetGrain<IRogueAgentGrain>(Guid.NewGuid());

        // A price near nothing would make every tenant's usage of the model free.
        var repriced = await agent.PriceModel(model, new ModelPriceInput(0.000000000001m, 0m, "USD", DateTimeOffset.UtcNow.AddMinutes(-1)));
        Assert.Equal(BillingStatus.Forbidden, repriced.Problem?.Status);
        var pricing = await agent.ReadModelPricing(model); // reading is allowed, and only the operator's price is there
        Assert.Equal(1_000_000m, pricing.Current!.InputPricePerMillion);
        Assert.Empty(pricing.Scheduled);

        // An endpoint of its own would receive every account's events (and its secret); the operator's could be deleted.
        var hook = new WebhookEndpointInput("http://127.0.0.1:9/exfil", ["balance.low"], Guid.NewGuid());
        Assert.Equal(BillingStatus.Forbidden, (await agent.CreateWebhook(hook)).Problem?.Status);
        var operatorHook = await Grains.GetGrain<IWebhooksGrain>(0).CreateOnce(hook with { Url = "http://127.0.0.1:9/operator", Id = Guid.NewGuid() });
        Assert.True(operatorHook.IsOk, operatorHook.Problem?.Detail);
        var operatorHookId = operatorHook.Value!.Endpoint.Id;
        await Assert.ThrowsAsync<BillingOperationFailedException>(() => agent.DeleteWebhook(operatorHookId));
        await Assert.ThrowsAsync<BillingOperationFailedException>(() => agent.ListWebhooks());
        Assert.Contains((await Grains.GetGrain<IWebhooksGrain>(0).List()).Items, e => e.Id == operatorHookId);
        Assert.DoesNotContain((await Grains.GetGrain<IWebhooksGrain>(0).List()).Items, e => e.Id == hook.Id);

        // A refused usage's billing error stays open for the operator.
        var refused = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1, 0));
        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem?.Status);
        var errors = await agent.ListBillingErrors(new BillingErrorQuery(BillingScopes.User, user, null, 10, null));
        var error = Assert.Single(errors.Value!.Items);
        Assert.Equal(BillingStatus.Forbidden, (await agent.ResolveBillingError(error.Id)).Problem?.Status);
        Assert.False(Assert.Single((await Grains.GetGrain<IBillingErrorsGrain>(0).List(new BillingErrorQuery(BillingScopes.User, user, null, 10, null))).Value!.Items).Resolved);

        // Past the pricing grain, straight to every silo's price book: the pushed copy is not taken, only what is stored.
        await agent.PushPrice(new ModelPrice(Guid.NewGuid(), model, 0.000000000001m, 0m, "USD", DateTimeOffset.UtcNow.AddSeconds(-30), DateTimeOffset.UtcNow));
        Assert.True((await Grains.GetGrain<IUserGrain>(user).Credit(new AccountCredit(10m, HistoryReasons.TopUp, Guid.NewGuid()))).IsOk);
        var charged = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 2, 0));
        Assert.True(charged.IsOk, charged.Problem?.Detail);
        Assert.Equal(2m, charged.Value!.Cost); // the operator's price (1 per input token), not 0.000000000000000002

        // The gateway (a cluster client) still does all of it.
        Assert.True((await Grains.GetGrain<IBillingErrorsGrain>(0).Resolve(error.Id)).IsOk);
        Assert.True(await Grains.GetGrain<IWebhooksGrain>(0).Delete(operatorHookId));
        Assert.True((await Grains.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput(2_000_000m, 0.0001m, "USD", null))).IsOk);
    }

    [Fact]
    public async Task ReviewDefect07_ChargeFromAClientIsForbidden()
    {
        var model = await NewModel();
        var user = await NewUser();
        var refused = await Grains.GetGrain<IUserGrain>(user).Charge(PersonalCharge(1m, model));
        Assert.Equal(BillingStatus.Forbidden, refused.Problem?.Status);
        Assert.Equal(10m, (await View(AccountKind.User, user)).Balance);
    }

    [Fact]
    public async Task ReviewDefect07_AHoldPlacementFromAClientIsForbiddenThroughEitherMethod()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser();
        var placement = new HoldPlacement(new HoldRequest(Guid.NewGuid(), null, user, model, 1, 1), 2m, "USD", 1_000_000m, 1_000_000m);

        Assert.Equal(BillingStatus.Forbidden, (await Grains.GetGrain<IUserGrain>(user).PlaceHold(placement)).Problem?.Status);
        Assert.Equal(BillingStatus.Forbidden, (await Grains.GetGrain<IUserGrain>(user).PlaceHoldOnce(placement)).Problem?.Status);
        Assert.Equal((10m, 0m), ((await View(AccountKind.User, user)).Balance, (await View(AccountKind.User, user)).Held));
    }

    [Fact]
    public async Task ReviewDefect08_PoisonOperationFailsAloneAndTheOthersCommit()
    {
        await Poison.InstallAsync(Fixture);
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var project = await NewProject(balance: 100m);
        var poisoned = Guid.NewGuid();
        await Poison.AddAsync(Fixture, poisoned, "23514"); // check_violation: the same statement always fails

        // One usage in flight, then a crowd that queues behind it and goes in one batch with the poisoned one.
        var usages = Enumerable.Range(0, 30).Select(i => new AiUsage(i == 5 ? poisoned : Guid.NewGuid(), project, user, model, 1, 0)).ToArray();
        var calls = usages.Select(u => Usage.RecordAiUsage(u)).ToArray();
        await Task.WhenAll(calls.Select(c => c.ContinueWith(_ => { })));

        var failure = await Assert.ThrowsAsync<BillingOperationFailedException>(() => calls[5]);
        Assert.Contains(poisoned.ToString(), failure.Message);
        Assert.DoesNotContain("poisoned usage", failure.Message); // the database's text stays in the log
        Assert.All(calls.Where((_, i) => i != 5), c => Assert.Equal(PayingAccount.Project, c.Result.Value!.DeductedFrom));
        Assert.Equal(71m, (await View(AccountKind.Project, project)).Balance);
        Assert.Equal(0, await Scalar("SELECT count(*) FROM usage_record WHERE usage_id = $1", poisoned));

        // The account goes on: the next usages commit.
        Assert.True((await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1, 0))).IsOk);
    }

    [Fact]
    public async Task ReviewDefect09_FullAccountQueueRefusesAtOnceWithOverloaded()
    {
        // This test's own cluster: its accounts queue at most 4 operations.
        await using var cluster = new LimitedClusterFixture();
        await cluster.InitializeAsync();
        var user = Guid.NewGuid();
        var grain = cluster.Grains.GetGrain<IUserGrain>(user);
        Assert.True((await grain.Initialize()).IsOk);
        using var refusals = new RefusalCounter();

        Task<BillingResult<AccountView>>[] credits;
        await using (var connection = new NpgsqlConnection(cluster.ConnectionString))
        {
            // A slow database: the account's row is locked, so its first write waits.
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var hold = new NpgsqlCommand("UPDATE user_billing SET balance = balance WHERE \"user\" = $1", connection, transaction))
            {
                hold.Parameters.Add(new NpgsqlParameter { Value = user });
                await hold.ExecuteNonQueryAsync();
            }

            var inFlight = grain.Credit(new AccountCredit(1m, HistoryReasons.TopUp, Guid.NewGuid()));
            await LockWaits.UntilBlockedByAsync(cluster.ConnectionString, connection); // in flight, out of the queue of 4
            credits = Enumerable.Range(0, 10).Select(_ => grain.Credit(new AccountCredit(1m, HistoryReasons.TopUp, Guid.NewGuid()))).ToArray();
            // The refusals are answered at once, while the write is still stuck (calls may arrive in any order).
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (credits.Count(c => c.IsCompleted) < 6 && DateTime.UtcNow < deadline) await Task.Delay(20);
            var answered = credits.Where(c => c.IsCompleted).ToArray();
            Assert.Equal(6, answered.Length);
            Assert.All(answered, c => Assert.Equal(BillingStatus.Overloaded, c.Result.Problem?.Status));
            Assert.False(inFlight.IsCompleted);
            await transaction.RollbackAsync();
            Assert.True((await inFlight).IsOk);
        }

        var results = await Task.WhenAll(credits);
        Assert.Equal(4, results.Count(r => r.IsOk));
        Assert.Equal(15m, (await grain.GetAccount()).Value!.Balance);
        Assert.Equal(6, refusals.Overloaded);
    }

    [Fact]
    public async Task ReviewDefect09_FullLedgerWriterRefusesAtOnce()
    {
        await using var dataSource = NpgsqlDataSource.Create(Fixture.ConnectionString);
        await using var writer = new LedgerWriter(dataSource, NullLogger<LedgerWriter>.Instance,
            Options.Create(new BillingLimits { LedgerWriterQueue = 1 }));
        var project = await NewProject(balance: 5m);
        var store = new LedgerStore(dataSource);
        var account = (await store.LoadAsync(AccountTable.Projects, project))!;
        var credit = AccountLedger.Credit(account, new AccountCredit(1m, HistoryReasons.TopUp, Guid.NewGuid()), DateTimeOffset.UtcNow).Row!;
        Task<bool> Write() => writer.CommitAsync(new LedgerCommit(AccountLedger.Apply(account, credit), account.Version, [credit], [], false));

        await using var connection = Fixture.OpenDatabase();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand("UPDATE project_billing SET balance = balance WHERE project = $1", connection, transaction))
        {
            hold.Parameters.Add(new NpgsqlParameter { Value = project });
            await hold.ExecuteNonQueryAsync();
        }

        var first = Write();         // taken by the partition's loop, waits on the row
        await LockWaits.UntilBlockedByAsync(Fixture.ConnectionString, connection); // taken: the queue is empty again
        var second = Write();        // fills the partition's queue (one account, one partition)
        Assert.Throws<LedgerWriterFullException>(() => { _ = Write(); });
        await transaction.RollbackAsync();
        Assert.True(await first);
        Assert.False(await second);  // the same expected version: a conflict, as any stale write
        await Fixture.Cluster.DeactivateAsync(Grains.GetGrain<IProjectGrain>(project));
    }

    [Fact]
    public async Task ReviewDefect10_ReadsAfterAFaultReloadTheAccount()
    {
        await Poison.InstallAsync(Fixture);
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var project = await NewProject(balance: 0m);
        var poisoned = Guid.NewGuid();
        await Poison.AddAsync(Fixture, poisoned, "53000"); // insufficient_resources: a fault, outcome unknown to the grain

        await Assert.ThrowsAnyAsync<Exception>(() => Usage.RecordPersonalUsage(new PersonalUsage(poisoned, user, model, 1, 0)));
        // What the faulted write might have done, done in the database behind the grain's back: a top-up of 5.
        await Scalar("""
            WITH acct AS (UPDATE user_billing SET balance = balance + 5, version = version + 1, updated_at = now()
                          WHERE "user" = $1 RETURNING balance, version)
            , hist AS (INSERT INTO user_billing_history (uid, "user", seq, amount, currency, reason, balance_after, credit_id, created_at)
            SELECT gen_random_uuid(), $1, version, 5, 'USD', 'top_up', balance, gen_random_uuid(), now() FROM acct)
            , paid AS (INSERT INTO credit_grant (grant_id, scope, account_id, category, priority, amount, remaining, currency, effective_at, state, created_at, updated_at)
            SELECT gen_random_uuid(), 'user', $1, 'paid', 50, 5, 5, 'USD', now(), 'active', now(), now() FROM acct RETURNING grant_id)
            INSERT INTO credit_grant_entry (scope, account_id, seq, ord, grant_id, amount)
            SELECT 'user', $1, acct.version, 0, paid.grant_id, 5 FROM acct, paid
            RETURNING 1
            """, user); // a top-up is a paid grant (issue 12)

        Assert.Equal(15m, (await View(AccountKind.User, user)).Balance);
        Assert.Equal(15m, (await Usage.CheckBalance(new BalanceCheck(project, user, model, 1, 0))).Value!.UserAvailable);
        Assert.Equal(15m, (await Grains.GetGrain<IUserGrain>(user).Initialize()).Value!.Account.Balance);
    }

    [Fact]
    public async Task ReviewDefect10_InitializeAfterAFaultReloadsTheAccount()
    {
        await Poison.InstallAsync(Fixture);
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var poisoned = Guid.NewGuid();
        await Poison.AddAsync(Fixture, poisoned, "53000");

        await Assert.ThrowsAnyAsync<Exception>(() => Usage.RecordPersonalUsage(new PersonalUsage(poisoned, user, model, 1, 0)));
        await Scalar("""
            WITH acct AS (UPDATE user_billing SET balance = balance + 5, version = version + 1, updated_at = now()
                          WHERE "user" = $1 RETURNING balance, version)
            , hist AS (INSERT INTO user_billing_history (uid, "user", seq, amount, currency, reason, balance_after, credit_id, created_at)
            SELECT gen_random_uuid(), $1, version, 5, 'USD', 'top_up', balance, gen_random_uuid(), now() FROM acct)
            , paid AS (INSERT INTO credit_grant (grant_id, scope, account_id, category, priority, amount, remaining, currency, effective_at, state, created_at, updated_at)
            SELECT gen_random_uuid(), 'user', $1, 'paid', 50, 5, 5, 'USD', now(), 'active', now(), now() FROM acct RETURNING grant_id)
            INSERT INTO credit_grant_entry (scope, account_id, seq, ord, grant_id, amount)
            SELECT 'user', $1, acct.version, 0, paid.grant_id, 5 FROM acct, paid
            RETURNING 1
            """, user); // a top-up is a paid grant (issue 12)

        var initialized = (await Grains.GetGrain<IUserGrain>(user).Initialize()).Value!;
        Assert.False(initialized.Created);
        Assert.Equal(15m, initialized.Account.Balance);
        Assert.Equal(2, initialized.Account.Version);
    }

    [Fact]
    public async Task ReviewDefect15_DuplicateTopUpsInOneBatchAreAppliedOnceAndDisturbNothing()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var project = await NewProject(balance: 500m);
        var grain = Grains.GetGrain<IProjectGrain>(project);
        var creditIds = Enumerable.Range(0, 40).Select(_ => Guid.NewGuid()).ToArray();

        // A busy account: unrelated usages interleaved with 40 pairs of identical top-ups, all at once.
        var usages = new List<Task<BillingResult<UsageReceipt>>>();
        var topUps = new List<Task<BillingResult<AccountView>>>();
        foreach (var creditId in creditIds)
        {
            usages.Add(Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1, 0)));
            topUps.Add(grain.Credit(new AccountCredit(2m, HistoryReasons.TopUp, creditId)));
            usages.Add(Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1, 0)));
            topUps.Add(grain.Credit(new AccountCredit(2m, HistoryReasons.TopUp, creditId)));
        }

        var usageResults = await Task.WhenAll(usages);
        var topUpResults = await Task.WhenAll(topUps);

        Assert.All(usageResults, r => Assert.Equal(PayingAccount.Project, r.Value!.DeductedFrom));
        Assert.All(topUpResults, r => Assert.True(r.IsOk, r.Problem?.Detail));
        Assert.Equal(40, await Scalar("SELECT count(*) FROM project_billing_history WHERE project = $1 AND credit_id = ANY($2)", project, creditIds));
        Assert.Equal(500m + 80m - 80m, (await View(AccountKind.Project, project)).Balance);
    }

    [Fact]
    public async Task ReviewDefect15_DuplicateFallbackMarkersInOneBatchAreWrittenOnce()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 30m);
        var project = await NewProject(balance: 0m);

        // Each usage twice at once: the user pays, and the project gets two marker requests for one usage id.
        var usages = Enumerable.Range(0, 20).Select(_ => new AiUsage(Guid.NewGuid(), project, user, model, 1, 0)).ToArray();
        var results = await Task.WhenAll(usages.Concat(usages).Select(u => Usage.RecordAiUsage(u)));

        Assert.All(results, r => Assert.Equal(PayingAccount.User, r.Value!.DeductedFrom));
        Assert.Equal(20, await Scalar("SELECT count(*) FROM project_billing_history WHERE project = $1 AND reason = 'ai_usage_user_fallback'", project));
        Assert.Equal(10m, (await View(AccountKind.User, user)).Balance);
    }

    private static AccountCharge PersonalCharge(decimal cost, Guid model) =>
        new(Guid.NewGuid(), HistoryReasons.AiUsagePersonal, cost, "USD", model, 1, 0, null);
}

/// <summary>A cluster whose account queues hold 4 operations (defect 9).</summary>
public sealed class LimitedClusterFixture : ClusterFixture, IAsyncDisposable
{
    protected override void ConfigureSilo(ISiloBuilder silo) =>
        silo.Services.Configure<BillingLimits>(limits => limits.AccountQueue = 4);

    async ValueTask IAsyncDisposable.DisposeAsync() => await DisposeAsync();
}

/// <summary>Counts billing.refusals with reason Overloaded, as an exporter would see them.</summary>
public sealed class RefusalCounter : IDisposable
{
    private readonly MeterListener listener = new();
    private int overloaded;

    public RefusalCounter()
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BillingMetrics.MeterName && instrument.Name == "billing.refusals") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag is { Key: "reason", Value: "Overloaded" }) Interlocked.Add(ref overloaded, (int)value);
            }
        });
        listener.Start();
    }

    public int Overloaded => Volatile.Read(ref overloaded);

    public void Dispose() => listener.Dispose();
}

/// <summary>
/// A database rule that refuses chosen usage ids with a chosen SQLSTATE (a trigger on the history tables):
/// a real database error for exactly one operation of a batch.
/// </summary>
public static class Poison
{
    public static async Task InstallAsync(ClusterFixture fixture)
    {
        await using var connection = fixture.OpenDatabase();
        await using var command = new NpgsqlCommand("""
            CREATE TABLE IF NOT EXISTS test_poisoned_usage (usage_id uuid PRIMARY KEY, sqlstate text NOT NULL);
            CREATE OR REPLACE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE code text;
            BEGIN
                IF NEW.usage_id IS NOT NULL THEN
                    SELECT sqlstate INTO code FROM test_poisoned_usage WHERE usage_id = NEW.usage_id;
                    IF code IS NOT NULL THEN
                        RAISE EXCEPTION 'poisoned usage %', NEW.usage_id USING ERRCODE = code;
                    END IF;
                END IF;
                RETURN NEW;
            END $$;
            DROP TRIGGER IF EXISTS test_poison ON project_billing_history;
            CREATE TRIGGER test_poison BEFORE INSERT ON project_billing_history FOR EACH ROW EXECUTE FUNCTION test_poison();
            DROP TRIGGER IF EXISTS test_poison ON user_billing_history;
            CREATE TRIGGER test_poison BEFORE INSERT ON user_billing_history FOR EACH ROW EXECUTE FUNCTION test_poison();
            """, connection);
        await command.ExecuteNonQueryAsync();
    }

    public static async Task AddAsync(ClusterFixture fixture, Guid usageId, string sqlState)
    {
        await using var connection = fixture.OpenDatabase();
        await using var command = new NpgsqlCommand("INSERT INTO test_poisoned_usage VALUES ($1, $2)", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = usageId });
        command.Parameters.Add(new NpgsqlParameter { Value = sqlState });
        await command.ExecuteNonQueryAsync();
    }
}
