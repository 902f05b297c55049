using Microsoft.Extensions.Options;

namespace Billing.Hosting;

/// <summary>
/// The configuration of a silo or gateway cannot work (a required setting missing, two ports the same): the process prints the
/// message and exits with 1, without a stack trace, like the schema check (Program.cs).
/// </summary>
public sealed class StartupConfigurationException(string message) : Exception(message)
{
    /// <summary>
    /// What to tell the operator when <paramref name="exception"/> is a configuration error: this exception, an options
    /// validation, or several validations at once (an <see cref="AggregateException"/> of them); null for any other
    /// exception, which is a crash.
    /// </summary>
    public static IReadOnlyList<string>? Messages(Exception exception) => exception switch
    {
        StartupConfigurationException => [exception.Message],
        OptionsValidationException validation => [.. validation.Failures],
        AggregateException { InnerExceptions: var inner } when inner.Count > 0 && inner.All(e => Messages(e) is not null) => [.. inner.SelectMany(e => Messages(e)!)],
        _ => null,
    };
}
