namespace Billing;

/// <summary>
/// What one account spent over [<see cref="From"/>, <see cref="To"/>), in UTC hour or day buckets, optionally per model.
/// <see cref="Scope"/> is <c>project</c> or <c>user</c> (<see cref="BillingScopes"/>), <see cref="Bucket"/> <c>hour</c> or <c>day</c>.
/// </summary>
[GenerateSerializer, Immutable, Alias("Billing.UsageSummaryQuery")]
public sealed record UsageSummaryQuery(string Scope, Guid ScopeId, DateTimeOffset From, DateTimeOffset To, string Bucket, bool GroupByModel);

/// <summary>One bucket: the account's usage rows whose time falls in [Start, Start + bucket). ModelId only when grouped by model.</summary>
[GenerateSerializer, Immutable, Alias("Billing.UsageBucket")]
public sealed record UsageBucket(DateTimeOffset Start, Guid? ModelId, long Requests, long InputTokens, long OutputTokens, decimal Cost, string Currency);

/// <summary>The sums over every usage row in the range (exactly the sums of the buckets).</summary>
[GenerateSerializer, Immutable, Alias("Billing.UsageTotal")]
public sealed record UsageTotal(long Requests, long InputTokens, long OutputTokens, decimal Cost, string Currency);

/// <summary>The non-empty buckets, oldest first (then by model), and their total.</summary>
[GenerateSerializer, Immutable, Alias("Billing.UsageSummary")]
public sealed record UsageSummary(DateTimeOffset From, DateTimeOffset To, string Bucket, UsageBucket[] Buckets, UsageTotal Total);

public static class UsageBuckets
{
    public const string Hour = "hour";
    public const string Day = "day";

    /// <summary>The longest range one summary may cover per bucket size (API.md: 31 days by day, 48 hours by hour).</summary>
    public static TimeSpan MaxRange(string bucket) => bucket == Hour ? TimeSpan.FromHours(48) : TimeSpan.FromDays(31);

    public static TimeSpan Size(string bucket) => bucket == Hour ? TimeSpan.FromHours(1) : TimeSpan.FromDays(1);
}

/// <summary>Reads usage summaries from the ledger. Stateless; use key 0.</summary>
[Alias("Billing.IUsageSummaryGrain")]
public interface IUsageSummaryGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// The account's spend: its usage history rows (project: <c>ai_usage</c>; user: <c>ai_usage_personal</c> and
    /// <c>ai_usage_user_fallback</c>) with cost = what the row took from the balance plus from the monthly quota.
    /// <see cref="BillingStatus.AccountNotFound"/> when the account was never initialised.
    /// </summary>
    [Alias("Summarize")]
    Task<BillingResult<UsageSummary>> Summarize(UsageSummaryQuery query);
}
