using System.ComponentModel.DataAnnotations;

namespace Billing.Client.Contracts;

// Request bodies. Every member is nullable so that a missing field is reported by name (400) instead of
// silently becoming a default; the handlers validate and translate them into the grain contract.
// [Required] documents the required members in the OpenAPI document; the handlers enforce them.

/// <summary>Body of <c>POST /v1/projects/{projectId}/billing</c>.</summary>
public sealed record InitializeProjectRequest
{
    [Required] public Guid? CreatorId { get; init; }
}

/// <summary>Body of <c>POST /v1/usage</c>; <c>usageId</c> may instead come in the <c>Idempotency-Key</c> header.</summary>
public sealed record AiUsageRequest
{
    [Required] public Guid? ProjectId { get; init; }

    [Required] public Guid? UserId { get; init; }

    [Required] public Guid? ModelId { get; init; }

    [Required] public long? InputTokens { get; init; }

    [Required] public long? OutputTokens { get; init; }

    /// <summary>Makes the call idempotent; a new id when absent (and no Idempotency-Key header).</summary>
    public Guid? UsageId { get; init; }
}

/// <summary>Body of <c>POST /v1/users/{userId}/usage</c>.</summary>
public sealed record PersonalUsageRequest
{
    [Required] public Guid? ModelId { get; init; }

    [Required] public long? InputTokens { get; init; }

    [Required] public long? OutputTokens { get; init; }

    public Guid? UsageId { get; init; }
}

/// <summary>Body of <c>POST /v1/balance-checks</c>.</summary>
public sealed record BalanceCheckRequest
{
    public Guid? ProjectId { get; init; }

    [Required] public Guid? UserId { get; init; }

    [Required] public Guid? ModelId { get; init; }

    [Required] public long? EstimatedInputTokens { get; init; }

    [Required] public long? EstimatedOutputTokens { get; init; }
}

/// <summary>Body of <c>PUT /v1/models/{modelId}/pricing</c>; prices per million tokens; currency USD by default; effective now by default.</summary>
public sealed record ModelPriceRequest
{
    [Required] public decimal? InputPricePerMillion { get; init; }

    [Required] public decimal? OutputPricePerMillion { get; init; }

    public string? Currency { get; init; }

    public DateTimeOffset? EffectiveFrom { get; init; }
}

/// <summary>Body of the credits routes; <c>reason</c> is top_up (default), refund or promotional_credit.</summary>
public sealed record CreditRequest
{
    [Required] public decimal? Amount { get; init; }

    public string? Reason { get; init; }

    /// <summary>Makes the credit idempotent: a repeated id credits nothing more.</summary>
    public Guid? CreditId { get; init; }
}

/// <summary>Body of the plan routes; <c>monthlyQuota</c> is required for a pro plan.</summary>
public sealed record PlanRequest
{
    [Required] public bool? IsPro { get; init; }

    public decimal? MonthlyQuota { get; init; }
}
