using System.ComponentModel.DataAnnotations;

namespace Billing.Client.Contracts;

/// <summary>
/// Body of <c>POST /v1/users/{userId}/grants</c> and <c>POST /v1/projects/{projectId}/grants</c>. <c>grantId</c> may instead
/// come in the <c>Idempotency-Key</c> header; <c>priority</c> defaults to 50, <c>effectiveAt</c> to now.
/// </summary>
public sealed record GrantRequest
{
    public Guid? GrantId { get; init; }

    [Required] public decimal? Amount { get; init; }

    /// <summary><c>promotional</c> or <c>paid</c>.</summary>
    [Required] public string? Category { get; init; }

    public int? Priority { get; init; }

    public DateTimeOffset? EffectiveAt { get; init; }

    public DateTimeOffset? ExpiresAt { get; init; }

    public string? Description { get; init; }
}

public sealed record GrantResponse(
    Guid GrantId,
    Guid AccountId,
    string Scope,
    string Category,
    int Priority,
    decimal Amount,
    decimal Remaining,
    string Currency,
    DateTime EffectiveAt,
    DateTime? ExpiresAt,
    string Status,
    string? Description,
    DateTime CreatedAt)
{
    public static GrantResponse From(GrantView g) => new(
        g.GrantId, g.AccountId, g.Kind == AccountKind.Project ? BillingScopes.Project : BillingScopes.User, GrantNames.Category(g.Category),
        g.Priority, g.Amount, g.Remaining, g.Currency, g.EffectiveAt.UtcDateTime, g.ExpiresAt?.UtcDateTime, GrantNames.Status(g.Status),
        g.Description, g.CreatedAt.UtcDateTime);
}

public sealed record GrantPageResponse(IReadOnlyList<GrantResponse> Items, string? NextCursor)
{
    public static GrantPageResponse From(GrantPage page) => new(page.Items.Select(GrantResponse.From).ToArray(), Cursor.Format(page.NextBefore));
}

/// <summary>What a history row moved on one grant, with the row's sign.</summary>
public sealed record GrantDrawResponse(Guid GrantId, decimal Amount);

/// <summary>The wire names of grant categories and statuses.</summary>
public static class GrantNames
{
    public static string Category(GrantCategory category) => category == GrantCategory.Promotional ? "promotional" : "paid";

    public static string Status(GrantStatus status) => status.ToString().ToLowerInvariant();

    public static bool TryCategory(string? name, out GrantCategory category)
    {
        category = name == "paid" ? GrantCategory.Paid : GrantCategory.Promotional;
        return name is "promotional" or "paid";
    }
}
