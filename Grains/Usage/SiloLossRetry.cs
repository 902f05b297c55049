namespace Billing.Usage;

/// <summary>
/// The usage grain's calls into accounts are idempotent (by usage id or hold id). When the silo holding an account goes
/// away during a call — a silo shutting down hands its accounts over, a crashed one is declared dead — the same call
/// again reaches the account's next activation and is applied at most once, so the caller gets an answer instead of a
/// 503. Two more attempts, 250 ms and 500 ms later; any other fault is not retried here.
/// </summary>
internal static class SiloLossRetry
{
    private const int Attempts = 3;

    public static async Task<T> CallAsync<T>(Func<Task<T>> call)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (Exception exception) when (attempt < Attempts && exception is SiloUnavailableException or OrleansMessageRejectionException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt));
            }
        }
    }

    public static async Task CallAsync(Func<Task> call) => await CallAsync(async () => { await call(); return true; });
}
