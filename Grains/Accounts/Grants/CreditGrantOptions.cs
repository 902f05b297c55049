namespace Billing.Accounts;

/// <summary>
/// Section <c>Billing:Credits</c> (environment <c>Billing__Credits__SignupExpiresAfterDays</c>, …): the expiry of the
/// two automatic grants (none by default) and how often the silo's grant clock looks for grants that time has made due.
/// </summary>
public sealed class CreditGrantOptions
{
    public const string Section = "Billing:Credits";

    /// <summary>Days after signup when what is left of the signup credit expires; null (default) or 0: never.</summary>
    public double? SignupExpiresAfterDays { get; set; }

    /// <summary>Days after initialisation when what is left of the first-project credit expires; null (default) or 0: never.</summary>
    public double? FirstProjectExpiresAfterDays { get; set; }

    /// <summary>How often each silo looks for grants to bring into effect or expire in accounts nobody touches.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The expiry of an automatic grant given at <paramref name="now"/>, or null.</summary>
    public static DateTimeOffset? ExpiryOf(double? days, DateTimeOffset now) => days is > 0 ? now.AddDays(days.Value) : null;
}
