namespace Billing.Tests;

[Collection(ClusterCollection.Name)]
public sealed class ConcurrencyTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    [Fact]
    public async Task Two_hundred_concurrent_usages_on_a_balance_for_fifty_charge_exactly_fifty()
    {
        var model = await NewModel(1_000_000m, 0.0001m); // 1 input token costs exactly 1
        var user = await NewUser(balance: 0m);
        var project = await NewProject(balance: 50m);

        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ =>
            Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1, 0))));

        Assert.Equal(50, results.Count(r => r.IsOk));
        var refusals = results.Where(r => !r.IsOk).ToArray();
        Assert.Equal(150, refusals.Length);
        Assert.All(refusals, r => Assert.Equal(BillingStatus.InsufficientBalance, r.Problem!.Status));
        Assert.Equal(150, refusals.Select(r => r.Problem!.BillingErrorId).Distinct().Count());
        Assert.Equal(0m, (await View(AccountKind.Project, project)).Balance);
        Assert.Equal(150, await BillingErrorCount(project));
    }

    [Fact]
    public async Task Twelve_concurrent_project_initialisations_by_one_creator_grant_exactly_one_credit()
    {
        var creator = Guid.NewGuid();
        var projects = Enumerable.Range(0, 12).Select(_ => Guid.NewGuid()).ToArray();

        // Each project initialised twice at once as well: retries must not add a credit either.
        var results = await Task.WhenAll(projects.Concat(projects).Select(p => Grains.GetGrain<IProjectGrain>(p).Initialize(creator)));

        foreach (var project in projects) Touch(AccountKind.Project, project);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM project_billing WHERE \"user\" = $1 AND initial_credit_granted", creator));
        Assert.Equal(20.0000m, (decimal)await Scalar("SELECT sum(balance)::bigint FROM project_billing WHERE \"user\" = $1", creator));
        Assert.Equal(12, results.Count(r => r.Value!.Created));
    }

    [Fact]
    public async Task Twenty_concurrent_calls_with_one_usage_id_charge_once()
    {
        var model = await NewModel();
        var user = await NewUser();
        var project = await NewProject();
        var usage = new AiUsage(Guid.NewGuid(), project, user, model, 1_234, 567);

        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Usage.RecordAiUsage(usage)));

        Assert.All(results, r => Assert.Equal(results[0].Value, r.Value));
        Assert.Equal(19.987793m, (await View(AccountKind.Project, project)).Balance);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM usage_record WHERE usage_id = $1", usage.UsageId));
    }

    [Fact]
    public async Task A_usage_id_refused_once_stays_refused_after_a_top_up_with_one_billing_error()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 0m);
        var project = await NewProject(balance: 0m);
        var usage = new AiUsage(Guid.NewGuid(), project, user, model, 5, 0);

        var refused = await Usage.RecordAiUsage(usage);
        await Grains.GetGrain<IProjectGrain>(project).Credit(new AccountCredit(100m, HistoryReasons.TopUp, null));
        var retried = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Usage.RecordAiUsage(usage)));

        Assert.All(retried, r => Assert.Equal(refused.Problem, r.Problem));
        Assert.Equal(100m, (await View(AccountKind.Project, project)).Balance);
        Assert.Equal(1, await BillingErrorCount(project));
    }

    [Fact]
    public async Task Copies_of_a_refused_usage_sent_among_other_refusals_store_one_billing_error_and_all_answer_it()
    {
        // Refusals waiting at the same moment are stored by one statement (RefusalWriter): the copies of one usage id
        // must still claim it once, whether they meet in one statement or follow each other.
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser(balance: 0m);
        var project = await NewProject(balance: 0m);
        var copied = new AiUsage(Guid.NewGuid(), project, user, model, 5, 0);
        var calls = Enumerable.Range(0, 64).Select(i => Usage.RecordAiUsage(i % 2 == 0 ? copied : copied with { UsageId = Guid.NewGuid() }));

        var answers = await Task.WhenAll(calls);

        Assert.All(answers, a => Assert.Equal(BillingStatus.InsufficientBalance, a.Problem!.Status));
        var copies = answers.Where((_, i) => i % 2 == 0).Select(a => a.Problem!.BillingErrorId).Distinct().ToList();
        Assert.Single(copies);
        Assert.Equal(33, await BillingErrorCount(project));
        Assert.Equal(33, await Scalar("SELECT count(DISTINCT billing_error_id) FROM usage_record WHERE billing_error_id IN (SELECT id FROM billing_error WHERE scope_id = $1)", project));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_error WHERE id = $1 AND usage_id = $2", copies[0]!.Value, copied.UsageId));
        Assert.Equal(66, await Scalar("SELECT count(*) FROM billing_event WHERE scope_id = $1", project)); // balance.depleted + billing_error.created each
    }

    [Fact]
    public async Task A_usage_paid_by_the_user_is_not_charged_again_by_a_topped_up_project_on_retry()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var project = await NewProject(balance: 0m);
        var usage = new AiUsage(Guid.NewGuid(), project, user, model, 3, 0);

        var first = await Usage.RecordAiUsage(usage);
        await Grains.GetGrain<IProjectGrain>(project).Credit(new AccountCredit(100m, HistoryReasons.TopUp, null));
        var retry = await Usage.RecordAiUsage(usage);

        Assert.Equal(PayingAccount.User, first.Value!.DeductedFrom);
        Assert.Equal(first.Value, retry.Value);
        Assert.Equal(100m, (await View(AccountKind.Project, project)).Balance);
        Assert.Equal(7m, (await View(AccountKind.User, user)).Balance);
    }

    [Fact]
    public async Task A_retry_of_a_usage_older_than_the_accounts_kept_receipts_is_answered_from_the_database_once()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var project = await NewProject(balance: 100m);
        var first = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1, 0));
        // More charges after it than the account keeps receipts of (32), so its answer is only in usage_record.
        for (var i = 0; i < 40; i++) Assert.True((await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1, 0))).IsOk);

        // Retried alone and with new usages in the same write: the old id fails only its own part of the batch.
        var retried = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Usage.RecordAiUsage(i % 2 == 0
            ? new AiUsage(first.Value!.UsageId, project, user, model, 1, 0)
            : new AiUsage(Guid.NewGuid(), project, user, model, 1, 0))));

        Assert.All(retried.Where((_, i) => i % 2 == 0), r => Assert.Equal(first.Value, r.Value));
        Assert.All(retried.Where((_, i) => i % 2 == 1), r => Assert.True(r.IsOk));
        Assert.Equal(100m - 1 - 40 - 3, (await View(AccountKind.Project, project)).Balance);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM usage_record WHERE usage_id = $1", first.Value!.UsageId));
    }

    [Fact]
    public async Task Many_accounts_commit_together_and_a_usage_id_stored_elsewhere_fails_only_its_own_write()
    {
        var model = await NewModel(1_000_000m, 0.0001m);
        var user = await NewUser();
        var projects = new Guid[40];
        for (var i = 0; i < projects.Length; i++) projects[i] = await NewProject(balance: 10m);
        var first = await Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), projects[0], user, model, 1, 0));

        // 40 accounts write at once (their statements share transactions in the silo's ledger writer); among
        // them, account 1 is asked to charge a usage id that account 0 has already charged. Through IUsageGrain,
        // as an account takes charges from the billing grains only.
        var writes = projects.Skip(1).Select(p => Usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), p, user, model, 2, 0)))
            .Append(Usage.RecordAiUsage(new AiUsage(first.Value!.UsageId, projects[1], user, model, 1, 0)))
            .ToArray();
        var results = await Task.WhenAll(writes);

        Assert.All(results[..^1], r => Assert.Equal(PayingAccount.Project, r.Value!.DeductedFrom));
        Assert.Equal(first.Value, results[^1].Value); // answered with the first charge, nothing written twice
        Assert.Equal(9m, (await View(AccountKind.Project, projects[0])).Balance);
        foreach (var project in projects.Skip(1)) Assert.Equal(8m, (await View(AccountKind.Project, project)).Balance);
    }
}
