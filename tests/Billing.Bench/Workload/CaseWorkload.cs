using System.Net;
using System.Text;
using System.Text.Json;
using Billing.Bench.Processes;
using Billing.Bench.Seeding;

namespace Billing.Bench.Workload;

/// <summary>
/// What one closed-loop caller does once in a case (<see cref="Call"/>), what the case adds to its line
/// (<see cref="Extra"/>) and what it leaves to clean up (<see cref="DisposeAsync"/>).
/// </summary>
internal sealed class CaseWorkload(Func<Random, Task<Outcome>> call, Func<string>? extra = null, IAsyncDisposable? owned = null) : IAsyncDisposable
{
    /// <summary>The refused cases' calls: at 3.00 per million input tokens, 300,000,000 USD, more than any seeded balance.</summary>
    private const long UnpayableInputTokens = 100_000_000_000_000;

    public Func<Random, Task<Outcome>> Call { get; } = call;

    public string Extra() => extra?.Invoke() ?? "";

    public ValueTask DisposeAsync() => owned?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>
    /// seed: the seed's FOR UPDATE transaction; db-single / db-shared / db-grain: the grains' ledger statement without
    /// Orleans; orleans: <c>IUsageGrain.RecordAiUsage</c> (path=cluster) or <c>POST /v1/usage</c> (path=http).
    /// </summary>
    public static CaseWorkload For(string accounts, string path, string mode, BenchOptions options, BenchDatabase database, BenchServices? services, BenchAccounts seeded)
    {
        var modelId = seeded.ModelId;
        switch (mode)
        {
            case "seed":
                return new(rng => { var a = seeded.Pick(accounts, rng); return SeedTransaction.SeedDeductAsync(database.Bench, a.Project, a.User, modelId); });
            case "db-single":
            {
                var experiment = seeded.Experiment!;
                return new(rng => experiment.ChargeAsync(seeded.Pick(accounts, rng).Project, modelId, commit => experiment.Store.CommitAsync(commit)));
            }
            case "db-shared":
            {
                var experiment = seeded.Experiment!;
                var committer = new SharedCommitter(database.Experiment, options.ExperimentWriters);
                return new(rng => experiment.ChargeAsync(seeded.Pick(accounts, rng).Project, modelId, committer.CommitAsync),
                    () => $" avg_batch={committer.AverageBatch:F1}", committer);
            }
            case "db-grain":
            {
                var own = seeded.GrainTables!;
                var ids = own.Ids;
                return new(rng => own.ChargeAsync(accounts == "hot" ? ids[0] : ids[rng.Next(ids.Length)], modelId, commit => own.Store.CommitAsync(commit)));
            }
        }

        if (mode == "hold") return new(ThroughHolds(services!, accounts, seeded));
        if (mode == "refused") return new(Refusals(services!, accounts, seeded));
        if (mode == "refused-hold") return new(HoldRefusals(services!, accounts, seeded));
        return path == "cluster" ? new(ThroughCluster(services!, accounts, seeded)) : new(ThroughHttp(services!.Http!, accounts, seeded));
    }

    /// <summary>hold: what an agent does around a streaming call — a hold for the most it can cost, then a capture of what it used.</summary>
    private static Func<Random, Task<Outcome>> ThroughHolds(BenchServices services, string accounts, BenchAccounts seeded)
    {
        var usage = services.Cluster.GetGrain<IUsageGrain>(0);
        return async rng =>
        {
            var a = seeded.Pick(accounts, rng);
            var holdId = Guid.NewGuid();
            var hold = await usage.PlaceHold(new HoldRequest(holdId, a.Project, a.User, seeded.ModelId, BenchUsage.InputTokens, 2 * BenchUsage.OutputTokens));
            if (!hold.IsOk) return Outcome.Refused($"place: {hold.Problem!.Status}: {hold.Problem.Detail}");
            var captured = await usage.CaptureHold(new HoldCapture(holdId, BenchUsage.InputTokens, BenchUsage.OutputTokens));
            return captured.IsOk ? Outcome.Ok(captured.Value!.Charged) : Outcome.Fault($"capture: {captured.Problem!.Status}: {captured.Problem.Detail}");
        };
    }

    /// <summary>
    /// refused: a dry spell — usages neither the project nor its user can pay (3 × 10⁸ USD each), each refused with its
    /// usage record, billing error and events, and no balance moved.
    /// </summary>
    private static Func<Random, Task<Outcome>> Refusals(BenchServices services, string accounts, BenchAccounts seeded)
    {
        var usage = services.Cluster.GetGrain<IUsageGrain>(0);
        return async rng =>
        {
            var a = seeded.Pick(accounts, rng);
            var result = await usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), a.Project, a.User, seeded.ModelId, UnpayableInputTokens, 0));
            if (result.Problem is { Status: BillingStatus.InsufficientBalance, BillingErrorId: not null }) return Outcome.RefusedAsExpected();
            return result.IsOk ? Outcome.Fault($"charged {result.Value!.Cost}: the case expects a refusal") : Outcome.Refused($"{result.Problem!.Status}: {result.Problem.Detail}");
        };
    }

    /// <summary>refused-hold: the same dry spell for agents that hold first — placements neither account can cover, each refused with its billing error.</summary>
    private static Func<Random, Task<Outcome>> HoldRefusals(BenchServices services, string accounts, BenchAccounts seeded)
    {
        var usage = services.Cluster.GetGrain<IUsageGrain>(0);
        return async rng =>
        {
            var a = seeded.Pick(accounts, rng);
            var hold = await usage.PlaceHold(new HoldRequest(Guid.NewGuid(), a.Project, a.User, seeded.ModelId, UnpayableInputTokens, BenchUsage.OutputTokens));
            if (hold.Problem is { Status: BillingStatus.InsufficientBalance, BillingErrorId: not null }) return Outcome.RefusedAsExpected();
            return hold.IsOk ? Outcome.Fault("placed: the case expects a refusal") : Outcome.Refused($"{hold.Problem!.Status}: {hold.Problem.Detail}");
        };
    }

    private static Func<Random, Task<Outcome>> ThroughCluster(BenchServices services, string accounts, BenchAccounts seeded)
    {
        var usage = services.Cluster.GetGrain<IUsageGrain>(0);
        return async rng =>
        {
            var a = seeded.Pick(accounts, rng);
            var result = await usage.RecordAiUsage(new AiUsage(Guid.NewGuid(), a.Project, a.User, seeded.ModelId, BenchUsage.InputTokens, BenchUsage.OutputTokens));
            return result.IsOk ? Outcome.Ok(result.Value!.Cost) : Outcome.Refused($"{result.Problem!.Status}: {result.Problem.Detail}");
        };
    }

    private static Func<Random, Task<Outcome>> ThroughHttp(HttpClient http, string accounts, BenchAccounts seeded) => async rng =>
    {
        var a = seeded.Pick(accounts, rng);
        var body = $$"""{"projectId":"{{a.Project}}","userId":"{{a.User}}","modelId":"{{seeded.ModelId}}","inputTokens":{{BenchUsage.InputTokens}},"outputTokens":{{BenchUsage.OutputTokens}},"usageId":"{{Guid.NewGuid()}}"}""";
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync("/v1/usage", content);
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode == HttpStatusCode.OK)
        {
            using var json = JsonDocument.Parse(text);
            return Outcome.Ok(json.RootElement.GetProperty("cost").GetDecimal());
        }

        var status = (int)response.StatusCode;
        return status is >= 400 and < 500 and not 408 and not 429
            ? Outcome.Refused($"HTTP {status}: {Report.BenchReport.Truncate(text)}")
            : Outcome.Fault($"HTTP {status}: {Report.BenchReport.Truncate(text)}");
    };
}
