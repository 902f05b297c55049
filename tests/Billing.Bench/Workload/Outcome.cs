namespace Billing.Bench.Workload;

/// <summary>
/// What one call returned: acknowledged (charged) with its cost, refused (a definite no), or a fault; a refusal that is
/// what the case asks for (<see cref="RefusedAsExpected"/>) counts as an answered call, charging nothing.
/// </summary>
public readonly record struct Outcome(bool Charged, decimal Cost, string? Error, bool Ambiguous, bool Expected = false)
{
    /// <summary>A refusal the case sends for (the refused case): measured like a charge, but nothing was charged.</summary>
    public static Outcome RefusedAsExpected() => new(false, 0, null, false, Expected: true);

    public static Outcome Ok(decimal cost) => new(true, cost, null, false);

    /// <summary>A definite refusal: nothing was charged.</summary>
    public static Outcome Refused(string error) => new(false, 0, error, false);

    /// <summary>A fault (timeout, exception, 5xx): the charge may or may not have been committed.</summary>
    public static Outcome Fault(string error) => new(false, 0, error, true);
}
