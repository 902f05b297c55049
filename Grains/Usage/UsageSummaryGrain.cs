using Billing.Storage;
using Npgsql;
using Orleans.Concurrency;

namespace Billing.Usage;

/// <summary>
/// Usage summaries, read straight from the ledger's history tables (the account grains are not asked for rows, so a
/// busy account's writes never wait on a 31-day read). The account grain is asked only whether the account exists.
/// </summary>
[StatelessWorker, Reentrant]
public sealed class UsageSummaryGrain(NpgsqlDataSource dataSource) : Grain, IUsageSummaryGrain
{
    private readonly UsageSummaryStore store = new(dataSource);

    public async Task<BillingResult<UsageSummary>> Summarize(UsageSummaryQuery query)
    {
        if (Validate(query) is { } invalid) return BillingResult<UsageSummary>.Fail(BillingStatus.InvalidInput, invalid);

        var kind = Accounts.AccountGrains.KindOf(query.Scope);
        var view = await Accounts.AccountGrains.Of(GrainFactory, kind, query.ScopeId).GetAccount();
        if (view.Problem is { } problem) return BillingResult<UsageSummary>.Fail(problem);

        var buckets = await store.SumAsync(kind, query.ScopeId, query.From, query.To, UsageBuckets.Size(query.Bucket), query.GroupByModel);
        return BillingResult<UsageSummary>.Ok(new UsageSummary(query.From, query.To, query.Bucket, buckets.ToArray(), Total(buckets, view.Value!.Currency)));
    }

    /// <summary>The sums of the buckets: decimal addition is exact, so the total is exactly the sum of the rows.</summary>
    private static UsageTotal Total(List<UsageBucket> buckets, string accountCurrency)
    {
        long requests = 0, input = 0, output = 0;
        var cost = 0m;
        foreach (var b in buckets)
        {
            requests += b.Requests;
            input += b.InputTokens;
            output += b.OutputTokens;
            cost += b.Cost;
        }

        return new UsageTotal(requests, input, output, cost, buckets.Count > 0 ? buckets[0].Currency : accountCurrency);
    }

    private static string? Validate(UsageSummaryQuery query)
    {
        if (query.Scope is not (BillingScopes.Project or BillingScopes.User)) return "scope must be 'project' or 'user'.";
        if (query.ScopeId == Guid.Empty) return "scopeId must be a UUID other than the nil UUID.";
        if (query.Bucket is not (UsageBuckets.Hour or UsageBuckets.Day)) return "bucket must be 'hour' or 'day'.";
        if (query.To <= query.From) return "to must be after from.";
        if (query.To - query.From > UsageBuckets.MaxRange(query.Bucket))
            return query.Bucket == UsageBuckets.Hour ? "An hourly summary covers at most 48 hours." : "A daily summary covers at most 31 days.";
        return null;
    }
}
