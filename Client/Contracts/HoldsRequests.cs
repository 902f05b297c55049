using System.ComponentModel.DataAnnotations;

namespace Billing.Client.Contracts;

/// <summary>Body of <c>POST /v1/holds</c>; <c>holdId</c> may instead come in the <c>Idempotency-Key</c> header.</summary>
public sealed record HoldRequestBody
{
    public Guid? HoldId { get; init; }

    /// <summary>Without it, a personal hold: only the user's account is considered.</summary>
    public Guid? ProjectId { get; init; }

    [Required] public Guid? UserId { get; init; }

    [Required] public Guid? ModelId { get; init; }

    [Required] public long? InputTokens { get; init; }

    [Required] public long? MaxOutputTokens { get; init; }

    /// <summary>1–86,400; 900 when absent.</summary>
    public int? TtlSeconds { get; init; }
}

/// <summary>Body of <c>POST /v1/holds/{holdId}/capture</c>; <c>usageId</c> defaults to the hold id.</summary>
public sealed record HoldCaptureBody
{
    [Required] public long? InputTokens { get; init; }

    [Required] public long? OutputTokens { get; init; }

    public Guid? UsageId { get; init; }
}
