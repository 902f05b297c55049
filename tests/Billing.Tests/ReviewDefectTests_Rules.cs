using System.Text.Json;
using Npgsql;

namespace Billing.Tests;

/// <summary>Issue 9, defects 1, 3 and 4: the fallback's refusal reasons, the first-project credit, the project's error text.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ReviewDefectTests_Rules(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task ReviewDefect01_FallbackToAnUninitialisedUserIsNotFoundNotAPermanent402()
    {
        var model = await NewModel(1_000_000m, 0.0001m); // n input tokens cost exactly n
        var project = await NewProject(balance: 0m);
        var user = Guid.NewGuid(); // no personal account yet
        var usage = new AiUsage(Guid.NewGuid(), project, user, model, 4, 0);

        var refused = await Usage.RecordAiUsage(usage);

        Assert.Equal(BillingStatus.AccountNotFound, refused.Problem!.Status);
        Assert.Null(refused.Problem.BillingErrorId);
        Assert.Equal(0, await Scalar("SELECT count(*) FROM usage_record WHERE usage_id = $1", usage.UsageId));
        Assert.Equal(0, await BillingErrorCount(project));

        Assert.True((await Grains.GetGrain<IUserGrain>(user).Initialize()).IsOk);
        Touch(AccountKind.User, user);
        var retried = await Usage.RecordAiUsage(usage);

        Assert.True(retried.IsOk, retried.Problem?.Detail);
        Assert.Equal((PayingAccount.User, 6.0000m), (retried.Value!.DeductedFrom, retried.Value.BalanceAfter));
        Assert.Equal(0, await BillingErrorCount(project));
    }

    [Fact]
    public async Task ReviewDefect03_AFailedProjectCreationClaimsNoFirstProjectCredit()
    {
        var creator = Guid.NewGuid();
        var failing = Guid.NewGuid();
        var suffix = failing.ToString("N");
        // A real failure of the account insert, made by the database itself for this one project.
        await Execute($"""
            CREATE FUNCTION fail_project_{suffix}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.project = '{failing}'::uuid THEN RAISE EXCEPTION 'injected failure of project {failing}'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER fail_project_{suffix} BEFORE INSERT ON project_billing FOR EACH ROW EXECUTE FUNCTION fail_project_{suffix}();
            """);
        try
        {
            await Assert.ThrowsAnyAsync<Exception>(() => Grains.GetGrain<IProjectGrain>(failing).Initialize(creator));
        }
        finally
        {
            await Execute($"DROP TRIGGER fail_project_{suffix} ON project_billing; DROP FUNCTION fail_project_{suffix}();");
        }

        var next = await NewProject(creator);
        var account = await View(AccountKind.Project, next);
        Assert.Equal((20.0000m, true), (account.Balance, account.InitialCreditGranted));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM first_project_credit WHERE creator = $1 AND project = $2", creator, next));

        // The project that failed can still be created, now as the creator's second project.
        var retried = await Grains.GetGrain<IProjectGrain>(failing).Initialize(creator);
        Touch(AccountKind.Project, failing);
        Assert.True(retried.IsOk, retried.Problem?.Detail);
        Assert.Equal((0m, false), (retried.Value!.Account.Balance, retried.Value.Account.InitialCreditGranted));
    }

    [Fact]
    public async Task ReviewDefect03_ConcurrentProjectsOfOneCreatorClaimExactlyOneCreditInTheDatabase()
    {
        var creator = Guid.NewGuid();
        var projects = Enumerable.Range(0, 16).Select(_ => Guid.NewGuid()).ToArray();

        var results = await Task.WhenAll(projects.Select(p => Grains.GetGrain<IProjectGrain>(p).Initialize(creator)));

        foreach (var project in projects) Touch(AccountKind.Project, project);
        var winner = Assert.Single(results, r => r.Value!.Account.InitialCreditGranted).Value!.Account;
        Assert.Equal(20.0000m, winner.Balance);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM first_project_credit WHERE creator = $1 AND project = $2", creator, winner.Id));
    }

    [Fact]
    public async Task ReviewDefect04_AProjectsBillingErrorDoesNotShowTheMembersPersonalBalance()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var project = await NewProject(balance: 5m);
        var user = await NewUser(balance: 9.2346m); // a figure that appears nowhere else
        var usage = new AiUsage(Guid.NewGuid(), project, user, model, 12, 0);

        var refused = await Usage.RecordAiUsage(usage);
        var repeated = await Usage.RecordAiUsage(usage);

        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        var errorId = refused.Problem.BillingErrorId!.Value;
        Assert.Equal(refused.Problem, repeated.Problem);
        await using var connection = Fixture.OpenDatabase();
        await using var command = new NpgsqlCommand("SELECT message, details::text FROM billing_error WHERE id = $1", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = errorId });
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        var (message, details) = (reader.GetString(0), reader.GetString(1));
        foreach (var text in new[] { refused.Problem.Detail, message, details })
        {
            Assert.DoesNotContain("9.2346", text);
            Assert.DoesNotContain($"user account {user}", text);
        }

        Assert.Contains("The user's personal account could not cover it", message);
        Assert.Contains("5", message);  // the project's available amount
        Assert.Contains("12", message); // and the cost
        using var json = JsonDocument.Parse(details);
        Assert.Equal(12m, json.RootElement.GetProperty("cost").GetDecimal());
    }

    private async Task Execute(string sql)
    {
        await using var connection = Fixture.OpenDatabase();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>Issue 9, defect 2: quota cycles keep their anchor day across short months (the clock moves forward only).</summary>
[Collection(ClockClusterCollection.Name)]
public sealed class ReviewDefectTests_RulesClock(ClockClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task ReviewDefect02_QuotaCycleAnchoredOnJan31EndsOnFebLastThenMar31ThenApr30()
    {
        // Prices are set in real time, so the clock only ever moves forward: to Jan 31, 10:00 UTC, two years on
        // (beyond what the other tests of this cluster advance it by).
        var year = Fixture.Clock.GetUtcNow().Year + 2;
        var february = DateTime.DaysInMonth(year, 2);
        SetClock(new DateTimeOffset(year, 1, 31, 10, 0, 0, TimeSpan.Zero));
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var plan = await Grains.GetGrain<IUserGrain>(user).ChangePlan(new PlanChange(true, 4m));
        var anchor = plan.Value!.CycleStart!.Value;
        var firstEnd = plan.Value.CycleEnd!.Value;
        Assert.Equal((year, 2, february, anchor.TimeOfDay), (firstEnd.Year, firstEnd.Month, firstEnd.Day, firstEnd.TimeOfDay));

        var expected = new[]
        {
            (Now: new DateTimeOffset(year, 2, february, 11, 0, 0, TimeSpan.Zero), End: new DateTimeOffset(year, 3, 31, 10, 0, 0, TimeSpan.Zero)),
            (Now: new DateTimeOffset(year, 3, 31, 11, 0, 0, TimeSpan.Zero), End: new DateTimeOffset(year, 4, 30, 10, 0, 0, TimeSpan.Zero)),
            (Now: new DateTimeOffset(year, 4, 30, 11, 0, 0, TimeSpan.Zero), End: new DateTimeOffset(year, 5, 31, 10, 0, 0, TimeSpan.Zero)),
        };
        var previousEnd = firstEnd;
        foreach (var (now, end) in expected)
        {
            await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 4, 0)); // uses up this cycle's quota
            SetClock(now);
            var paid = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1, 0));
            Assert.Equal(1m, paid.Value!.QuotaUsed); // the quota was reset

            var account = await View(AccountKind.User, user);
            Assert.Equal(previousEnd, account.CycleStart); // contiguous: it starts where the last one ended
            Assert.Equal(end.UtcDateTime.Date, account.CycleEnd!.Value.UtcDateTime.Date); // the anchor's day, clamped
            Assert.Equal(anchor.TimeOfDay, account.CycleEnd.Value.TimeOfDay); // at the anchor's time of day
            previousEnd = account.CycleEnd.Value;
        }
    }

    /// <summary>Moves the test clock to <paramref name="at"/> (forward only; see the quota cycle test).</summary>
    private void SetClock(DateTimeOffset at)
    {
        var by = at - Fixture.Clock.GetUtcNow();
        Assert.True(by > TimeSpan.Zero, $"the clock is already past {at:O}");
        Fixture.Clock.Advance(by);
    }
}
