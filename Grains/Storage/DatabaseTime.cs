namespace Billing.Storage;

/// <summary>PostgreSQL keeps microseconds: timestamps are cut to that before use, so a reloaded value reads the same.</summary>
public static class DatabaseTime
{
    public static DateTimeOffset ToDatabasePrecision(this DateTimeOffset value) => value.AddTicks(-(value.Ticks % 10));

    public static DateTimeOffset GetDatabaseNow(this TimeProvider clock) => clock.GetUtcNow().ToDatabasePrecision();
}
