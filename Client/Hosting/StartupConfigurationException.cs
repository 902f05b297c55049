namespace Billing.Client.Hosting;

/// <summary>
/// The gateway's configuration cannot work (a required setting missing): the process prints the message and exits
/// with 1, without a stack trace (Program.cs).
/// </summary>
public sealed class StartupConfigurationException(string message) : Exception(message);
