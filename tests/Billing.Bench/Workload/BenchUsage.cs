namespace Billing.Bench.Workload;

/// <summary>The usage every call records, whatever the mode.</summary>
public static class BenchUsage
{
    public const decimal Cost = 0.00885m; // 1200 input + 350 output tokens at 3.00 / 15.00 USD per million
    public const long InputTokens = 1200;
    public const long OutputTokens = 350;
}
