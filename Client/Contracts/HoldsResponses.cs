using System.Text.Json.Serialization;

namespace Billing.Client.Contracts;

[JsonConverter(typeof(JsonStringEnumConverter<HoldStatusName>))]
public enum HoldStatusName
{
    [JsonStringEnumMemberName("active")] Active,
    [JsonStringEnumMemberName("captured")] Captured,
    [JsonStringEnumMemberName("voided")] Voided,
    [JsonStringEnumMemberName("expired")] Expired,
}

public sealed record HoldResponse(
    Guid HoldId,
    HoldStatusName Status,
    PayerName Payer,
    Guid AccountId,
    Guid? ProjectId,
    Guid UserId,
    Guid ModelId,
    long InputTokens,
    long MaxOutputTokens,
    decimal Amount,
    string Currency,
    int TtlSeconds,
    DateTime ExpiresAt,
    DateTime CreatedAt,
    DateTime? EndedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] HoldCaptureResponse? Capture)
{
    public static HoldResponse From(HoldView h) => new(
        h.HoldId, (HoldStatusName)(int)h.Status, PayerOf(h.Payer), h.AccountId, h.ProjectId, h.UserId, h.ModelId, h.InputTokens, h.MaxOutputTokens,
        h.Amount, h.Currency, h.TtlSeconds, h.ExpiresAt.UtcDateTime, h.CreatedAt.UtcDateTime, h.EndedAt?.UtcDateTime,
        h.Capture is null ? null : HoldCaptureResponse.From(h.Capture));

    internal static PayerName PayerOf(PayingAccount payer) => payer == PayingAccount.Project ? PayerName.Project : PayerName.User;
}

/// <summary>The usage receipt of <c>POST /v1/usage</c> plus how the hold was settled.</summary>
public sealed record HoldCaptureResponse(
    Guid UsageId,
    decimal Cost,
    string Currency,
    long InputTokens,
    long OutputTokens,
    PayerName DeductedFrom,
    Guid AccountId,
    decimal BalanceAfter,
    decimal QuotaUsed,
    Guid HoldId,
    decimal Held,
    decimal Charged,
    decimal Released,
    decimal Shortfall,
    bool Late,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Guid? ShortfallBillingErrorId)
{
    public static HoldCaptureResponse From(HoldCaptureReceipt r) => new(
        r.UsageId, r.Cost, r.Currency, r.InputTokens, r.OutputTokens, HoldResponse.PayerOf(r.DeductedFrom), r.AccountId, r.BalanceAfter, r.QuotaUsed,
        r.HoldId, r.Held, r.Charged, r.Released, r.Shortfall, r.Late, r.ShortfallErrorId);
}

public sealed record HoldPageResponse(IReadOnlyList<HoldResponse> Items, string? NextCursor)
{
    public static HoldPageResponse From(HoldPage page) => new(page.Items.Select(HoldResponse.From).ToArray(), Cursor.Format(page.NextBefore));
}
