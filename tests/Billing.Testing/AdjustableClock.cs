namespace Billing.Testing;

/// <summary>A clock the tests can move forward (quota cycles, grant and hold expiry); otherwise real time.</summary>
public sealed class AdjustableClock : TimeProvider
{
    private long offsetTicks;

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow().AddTicks(Interlocked.Read(ref offsetTicks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref offsetTicks, by.Ticks);
}
