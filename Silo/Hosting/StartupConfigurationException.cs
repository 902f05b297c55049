namespace Billing.Silo.Hosting;

/// <summary>
/// The silo's configuration cannot work (a required setting missing, two ports the same): the process prints the
/// message and exits with 1, without a stack trace, like the schema check (Program.cs).
/// </summary>
public sealed class StartupConfigurationException(string message) : Exception(message);
