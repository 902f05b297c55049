using System.Diagnostics;
using Billing.Bench.Processes;
using Billing.Bench.Workload;
using static Billing.Bench.Report.Progress;

namespace Billing.Bench.Seeding;

/// <summary>
/// The accounts the cases charge: 1 HOT project and --projects SPREAD projects, under the same ids in the grains'
/// tables (through the grains), the seed's tables and the experiment's tables; and db-grain's own accounts.
/// </summary>
internal sealed record BenchAccounts(
    Guid ModelId,
    (Guid Project, Guid User) Hot,
    (Guid Project, Guid User)[] Spread,
    LedgerAccounts? Experiment,
    LedgerAccounts? GrainTables)
{
    private const decimal HotTopUp = 100_000_000m;
    private const decimal SpreadTopUp = 1_000_000m;

    /// <summary>The HOT account, or one SPREAD account at random.</summary>
    public (Guid Project, Guid User) Pick(string accounts, Random rng) => accounts == "hot" ? Hot : Spread[rng.Next(Spread.Length)];

    public static async Task<BenchAccounts> SeedAsync(BenchOptions options, BenchDatabase database, BenchServices? services)
    {
        var modelId = Guid.NewGuid();
        var creators = Enumerable.Range(0, Math.Max(1, options.SpreadProjects / 100)).Select(_ => Guid.NewGuid()).ToArray();
        var hot = (Guid.NewGuid(), Guid.NewGuid());
        (Guid Project, Guid User)[] spread = options.Accounts.Contains("spread")
            ? Enumerable.Range(0, options.SpreadProjects).Select(i => (Guid.NewGuid(), creators[i % creators.Length])).ToArray()
            : [];
        var all = new[] { hot }.Concat(spread).ToArray();
        if (services is not null)
        {
            await ThroughTheGrainsAsync(services, modelId, all, creators, options.Alerts, options.Grants);
            if (options.OpenHolds > 0) await OpenHoldsAsync(services, modelId, hot, options.OpenHolds);
        }

        var db = database.Bench;
        await BenchDatabase.ExecuteAsync(db, SeedTables.Schema);
        await BenchDatabase.ExecuteAsync(db, ExperimentTables.Schema);
        if (options.ExperimentForeignKey) await BenchDatabase.ExecuteAsync(db, ExperimentTables.ForeignKey);
        await SeedTables.CreateAccountsAsync(db, all, SpreadTopUp * 100);
        Say($"seed: {all.Length} accounts in seed_project_billing");

        LedgerAccounts? experiment = null, grainTables = null;
        if (options.Modes.Contains("db-single") || options.Modes.Contains("db-shared"))
        {
            experiment = new LedgerAccounts(database.Experiment);
            await experiment.CreateAsync(all, SpreadTopUp * 100);
            Say($"seed: {all.Length} accounts in {ExperimentTables.AccountTable} (same ids; created with the grains' LedgerStore) for db-single/db-shared");
        }

        if (options.Modes.Contains("db-grain"))
        {
            grainTables = new LedgerAccounts(database.GrainTables);
            await grainTables.CreateAsync(Enumerable.Range(0, Math.Max(1, spread.Length)).Select(_ => (Guid.NewGuid(), Guid.NewGuid())).ToArray(), SpreadTopUp);
            Say($"seed: {grainTables.Ids.Length} accounts of its own for db-grain (created with the grains' LedgerStore)");
        }

        return new BenchAccounts(modelId, hot, spread, experiment, grainTables);
    }

    /// <summary>
    /// Loads every project into the silos of a cluster started after the seeding one (--silos 1,2), as seeding did for
    /// the first: its cases then measure warm accounts, as the first cluster's do, not 10,000 activations.
    /// </summary>
    public async Task ActivateAsync(BenchServices services)
    {
        var started = Stopwatch.StartNew();
        await Parallel.ForEachAsync(new[] { Hot }.Concat(Spread), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (p, _) =>
            Check(await services.Cluster.GetGrain<IProjectGrain>(p.Project).GetAccount(), "project GetAccount"));
        Say($"seed: {1 + Spread.Length} projects activated in the {services.SiloCount}-silo cluster in {started.Elapsed.TotalSeconds:F1} s; " +
            $"silo working set {Report.BenchReport.Mb(services.SiloRssKb)} MB");
    }

    /// <summary>A model price, the users and the projects with their top-ups, through the grains (so the silo holds them).</summary>
    private static async Task ThroughTheGrainsAsync(BenchServices services, Guid modelId, (Guid Project, Guid User)[] all, Guid[] creators, bool alerts, int grants)
    {
        var started = Stopwatch.StartNew();
        var cluster = services.Cluster;
        var price = await cluster.GetGrain<IModelPricingGrain>(modelId).AddPrice(new ModelPriceInput(3.00m, 15.00m, "USD", DateTimeOffset.UtcNow.AddMinutes(-1)));
        if (!price.IsOk) throw new InvalidOperationException($"AddPrice: {price.Problem}");
        var users = new[] { all[0].User }.Concat(all.Length > 1 ? creators : []).ToArray();
        await Parallel.ForEachAsync(users, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (user, _) =>
            Check(await cluster.GetGrain<IUserGrain>(user).Initialize(), "user Initialize"));
        var projects = all.Select((p, i) => (p, i == 0 ? HotTopUp : SpreadTopUp)).ToArray();
        var done = 0;
        await Parallel.ForEachAsync(projects, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (p, _) =>
        {
            var grain = cluster.GetGrain<IProjectGrain>(p.Item1.Project);
            Check(await grain.Initialize(p.Item1.User), "project Initialize");
            var topUp = await grain.Credit(new AccountCredit(p.Item2, HistoryReasons.TopUp, Guid.NewGuid()));
            Check(topUp, "project Credit");
            // Promotional grants are spent before the top-up's paid grant, the lowest priority first: usage draws on them.
            for (var i = 1; i < grants; i++)
            {
                Check(await grain.Grant(new GrantInput(Guid.NewGuid(), 1_000m, GrantCategory.Promotional, Priority: i, null, null, "bench")), "project Grant");
            }

            if (alerts)
            {
                // Every usage is evaluated against five thresholds; the top one is crossed within the first usages.
                var balance = topUp.Value!.Balance;
                Check(await grain.AsReference<IBalanceAlertsGrain>().SetAlerts([balance - 0.01m, balance / 2, 100m, 10m, 1m]), "project SetAlerts");
            }

            if (Interlocked.Increment(ref done) % 2000 == 0) Say($"seed: {done}/{projects.Length} projects initialised and topped up");
        });
        if (alerts) Say("seed: balance alerts on every project (5 thresholds)");
        if (grants > 1) Say($"seed: {grants} open credit grants on every project ({grants - 1} promotional, spent first)");
        Say($"seed: model price 3.00/15.00 USD per million tokens; {users.Length} users, {projects.Length} projects initialised and topped up through the grains in {started.Elapsed.TotalSeconds:F1} s; " +
            $"silo working set {Report.BenchReport.Mb(services.SiloRssKb)} MB");
    }

    /// <summary>Holds that stay active through every case on the HOT project: a day's ttl, never captured, 0.000003 USD each (one input token).</summary>
    private static async Task OpenHoldsAsync(BenchServices services, Guid modelId, (Guid Project, Guid User) hot, int count)
    {
        var started = Stopwatch.StartNew();
        var usage = services.Cluster.GetGrain<IUsageGrain>(0);
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (_, _) =>
            Check(await usage.PlaceHold(new HoldRequest(Guid.NewGuid(), hot.Project, hot.User, modelId, 1, 0, HoldRequest.MaxTtlSeconds)), "PlaceHold (open)"));
        Say($"seed: {count} open holds on the HOT project in {started.Elapsed.TotalSeconds:F1} s; silo working set {Report.BenchReport.Mb(services.SiloRssKb)} MB");
    }

    private static void Check<T>(BillingResult<T> result, string what) where T : class
    {
        if (!result.IsOk) throw new InvalidOperationException($"{what}: {result.Problem}");
    }
}
