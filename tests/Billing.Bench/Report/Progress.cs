namespace Billing.Bench.Report;

/// <summary>Progress lines of the run, time-stamped, on stdout between the case lines.</summary>
internal static class Progress
{
    public static void Say(string message) => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");
}
