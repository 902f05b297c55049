namespace Billing.Bank;

/// <summary>
/// Defects the bank found that are not fixed yet: each is printed as <c>KNOWN DEFECT</c> and counted in the summary;
/// with <c>--strict</c> each is a violation (the run fails), as it will be once the defect is fixed.
/// <list type="bullet">
/// <item><b>hold-retry-refused</b>: placing a hold again with the same id and body after the hold ended (captured,
/// voided or expired) is decided anew against the payer's available instead of answering the stored hold; when that
/// is short, the answer is a 402 and a new <c>insufficient_balance</c> billing error is stored for a hold that was
/// granted. API.md: "The same holdId again with the same body: 200 with the same hold (whatever its status now)".</item>
/// </list>
/// </summary>
public static class KnownDefects
{
    public const string HoldRetryRefused = "hold-retry-refused";

    private static int count;
    private static Action<string>? violation;
    private static bool strict;

    public static int Count => count;

    public static void Configure(bool failOnDefects, Action<string> onViolation)
    {
        strict = failOnDefects;
        violation = onViolation;
    }

    public static void Report(string defect, string what)
    {
        var n = Interlocked.Increment(ref count);
        if (strict) violation?.Invoke($"[{defect}] {what}");
        else if (n <= 10) Console.WriteLine($"KNOWN DEFECT [{defect}] {what}");
    }
}
