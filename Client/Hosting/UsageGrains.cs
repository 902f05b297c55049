using Orleans.Runtime;

namespace Billing.Client.Hosting;

/// <summary>
/// The gateway's references to the usage grains it spreads calls over (<see cref="ClusterClientSetup.UsageGrainKeys"/>),
/// made once: <c>GetGrain</c> resolves the grain interface's type each time, about 5 % of the gateway's CPU per usage
/// when it was called per request.
/// </summary>
public sealed partial class UsageGrains(IClusterClient cluster, ILogger<UsageGrains> logger)
{
    // A call whose silo left is tried this many times in all (250 ms, then 500 ms apart).
    private const int SiloLossAttempts = 3;

    // Made on first use, inside the request: a client that is not connected yet throws from GetGrain, and the request
    // must have remembered its usage id by then (its 503 names it). A failed attempt is not kept; the next call retries.
    private IUsageGrain[]? grains;

    /// <summary>One of the usage grains, at random (see <see cref="ClusterClientSetup.UsageGrainKey"/> for why not one).</summary>
    public IUsageGrain Any() => (grains ??= Create())[ClusterClientSetup.UsageGrainKey()];

    /// <summary>
    /// One call to a usage grain. Every usage grain call is idempotent (by usage id or hold id) or a read, so when the
    /// silo the call went to leaves during it (a silo shutting down, or lost), the same call goes again, to another
    /// usage grain, 250 ms and then 500 ms later, and the caller gets its answer instead of a 503. Overload and other
    /// faults are not retried here.
    /// </summary>
    /// <param name="call">The grain call.</param>
    /// <param name="retryUnanswered">
    /// A call that got no answer at all within the cluster-call timeout went to a silo that stopped answering (frozen,
    /// or stopping with the call inside it; an Orleans client does not fail such calls), and it may still be running
    /// there. True: send it once more, for calls where that is safe: usage, hold placements and captures, whose first
    /// stored outcome (a charge or a refusal, each claims the usage id in <c>usage_record</c>, a late capture's refusal
    /// too; a hold or a refusal, each claims the hold id in <c>billing_hold</c>) is the answer of every copy; voids,
    /// which end a hold once and answer every copy with that end; and reads.
    /// </param>
    public async Task<T> CallAsync<T>(Func<IUsageGrain, Task<T>> call, bool retryUnanswered = false)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call(Any());
            }
            catch (Exception exception) when (attempt < SiloLossAttempts && IsSiloLoss(exception))
            {
                LogSiloLost(logger, exception.GetType().Name, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt));
            }
            catch (TimeoutException) when (retryUnanswered && attempt == 1)
            {
                LogUnanswered(logger);
            }
        }
    }

    private static bool IsSiloLoss(Exception exception) =>
        exception is SiloUnavailableException or OrleansMessageRejectionException or Orleans.Runtime.Messaging.ConnectionFailedException;

    private IUsageGrain[] Create() => Enumerable.Range(0, ClusterClientSetup.UsageGrainKeys).Select(key => cluster.GetGrain<IUsageGrain>(key)).ToArray();

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage grain call lost its silo ({ExceptionType}) on attempt {Attempt}; calling again (idempotent)")]
    private static partial void LogSiloLost(ILogger logger, string exceptionType, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage grain call got no answer within the cluster-call timeout; calling once more (idempotent)")]
    private static partial void LogUnanswered(ILogger logger);
}
