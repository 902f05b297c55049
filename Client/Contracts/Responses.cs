using System.Text.Json;
using System.Text.Json.Serialization;

namespace Billing.Client.Contracts;

// Response bodies: money is decimal (written exactly), timestamps are UTC, enums are lowercase strings.

[JsonConverter(typeof(JsonStringEnumConverter<AccountKindName>))]
public enum AccountKindName
{
    [JsonStringEnumMemberName("user")] User,
    [JsonStringEnumMemberName("project")] Project,
}

[JsonConverter(typeof(JsonStringEnumConverter<PayerName>))]
public enum PayerName
{
    [JsonStringEnumMemberName("project")] Project,
    [JsonStringEnumMemberName("user")] User,
}

public sealed record AccountResponse(
    Guid Id,
    AccountKindName Kind,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Guid? CreatorId,
    decimal Balance,
    string Currency,
    bool InitialCreditGranted,
    bool IsPro,
    decimal MonthlyQuota,
    decimal MonthUsed,
    DateTime? CycleStart,
    DateTime? CycleEnd,
    DateTime CreatedAt,
    DateTime UpdatedAt,
    long Version,
    decimal Held,
    decimal Available)
{
    /// <summary>The credit id of a top-up (given or generated): retrying with it credits nothing more. Top-ups only.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Guid? CreditId { get; init; }

    public static AccountResponse From(AccountView a) => new(
        a.Id,
        a.Kind == AccountKind.Project ? AccountKindName.Project : AccountKindName.User,
        a.CreatorId,
        a.Balance,
        a.Currency,
        a.InitialCreditGranted,
        a.IsPro,
        a.MonthlyQuota,
        a.MonthUsed,
        a.CycleStart?.UtcDateTime,
        a.CycleEnd?.UtcDateTime,
        a.CreatedAt.UtcDateTime,
        a.UpdatedAt.UtcDateTime,
        a.Version,
        a.Held,
        a.Available);
}

public sealed record UsageResponse(
    Guid UsageId,
    decimal Cost,
    string Currency,
    long InputTokens,
    long OutputTokens,
    PayerName DeductedFrom,
    Guid AccountId,
    decimal BalanceAfter,
    decimal QuotaUsed)
{
    public static UsageResponse From(UsageReceipt r) => new(
        r.UsageId, r.Cost, r.Currency, r.InputTokens, r.OutputTokens,
        r.DeductedFrom == PayingAccount.Project ? PayerName.Project : PayerName.User,
        r.AccountId, r.BalanceAfter, r.QuotaUsed);
}

public sealed record BalanceCheckResponse(bool Sufficient, decimal EstimatedCost, string Currency, decimal? ProjectAvailable, decimal UserAvailable)
{
    public static BalanceCheckResponse From(BalanceCheckResult r) =>
        new(r.Sufficient, r.EstimatedCost, r.Currency, r.ProjectAvailable, r.UserAvailable);
}

public sealed record HistoryItemResponse(
    Guid Id,
    long Sequence,
    decimal Amount,
    decimal QuotaUsed,
    string Currency,
    string Reason,
    decimal BalanceAfter,
    decimal MonthUsedAfter,
    Guid? UsageId,
    Guid? UserId,
    Guid? ProjectId,
    Guid? ModelId,
    long? InputTokens,
    long? OutputTokens,
    Guid? CreditId,
    JsonElement? Details,
    DateTime CreatedAt,
    Guid? HoldId,
    IReadOnlyList<GrantDrawResponse> Grants)
{
    public static HistoryItemResponse From(HistoryEntry e) => new(
        e.Id, e.Sequence, e.Amount, e.QuotaUsed, e.Currency, e.Reason, e.BalanceAfter, e.MonthUsedAfter,
        e.UsageId, e.UserId, e.ProjectId, e.ModelId, e.InputTokens, e.OutputTokens, e.CreditId, StoredJson.Parse(e.Details),
        e.CreatedAt.UtcDateTime, e.HoldId, e.Grants?.Select(d => new GrantDrawResponse(d.GrantId, d.Amount)).ToArray() ?? []);
}

/// <summary>A page, newest first; pass <see cref="NextCursor"/> as <c>?cursor=</c> for the next one (null: no more).</summary>
public sealed record HistoryPageResponse(IReadOnlyList<HistoryItemResponse> Items, string? NextCursor)
{
    public static HistoryPageResponse From(HistoryPage page) =>
        new(page.Items.Select(HistoryItemResponse.From).ToArray(), Cursor.Format(page.NextBefore));
}

public sealed record BillingErrorResponse(
    Guid Id,
    string Scope,
    Guid ScopeId,
    string ErrorType,
    string Message,
    JsonElement? Details,
    bool Resolved,
    DateTime CreatedAt,
    DateTime? ResolvedAt)
{
    public static BillingErrorResponse From(BillingErrorView e) => new(
        e.Id, e.Scope, e.ScopeId, e.ErrorType, e.Message, StoredJson.Parse(e.Details), e.Resolved, e.CreatedAt.UtcDateTime, e.ResolvedAt?.UtcDateTime);
}

public sealed record BillingErrorPageResponse(IReadOnlyList<BillingErrorResponse> Items, string? NextCursor)
{
    public static BillingErrorPageResponse From(BillingErrorPage page) =>
        new(page.Items.Select(BillingErrorResponse.From).ToArray(), Cursor.Format(page.NextBefore));
}

public sealed record ModelPriceResponse(
    Guid Id,
    Guid ModelId,
    decimal InputPricePerMillion,
    decimal OutputPricePerMillion,
    string Currency,
    DateTime EffectiveFrom,
    DateTime CreatedAt)
{
    public static ModelPriceResponse From(ModelPrice p) => new(
        p.Id, p.ModelId, p.InputPricePerMillion, p.OutputPricePerMillion, p.Currency, p.EffectiveFrom.UtcDateTime, p.CreatedAt.UtcDateTime);
}

public sealed record ModelPricingResponse(ModelPriceResponse? Current, IReadOnlyList<ModelPriceResponse> Scheduled)
{
    public static ModelPricingResponse From(ModelPricing p) =>
        new(p.Current is null ? null : ModelPriceResponse.From(p.Current), p.Scheduled.Select(ModelPriceResponse.From).ToArray());
}

public sealed record HealthResponse(string Status);

/// <summary>Paging cursors are the grain's sequence numbers, opaque to clients.</summary>
public static class Cursor
{
    public static string? Format(long? before) => before?.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static bool TryParse(string? text, out long? before)
    {
        before = null;
        if (string.IsNullOrEmpty(text)) return true;
        if (long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) && value > 0)
        {
            before = value;
            return true;
        }

        return false;
    }
}

/// <summary>
/// A stored <c>jsonb</c> value (a history row's extra, a billing error's details) as the JSON it is, an object in the
/// response body, not a string of JSON that clients would have to parse a second time.
/// </summary>
internal static class StoredJson
{
    public static JsonElement? Parse(string? json)
    {
        if (json is null) return null;
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
