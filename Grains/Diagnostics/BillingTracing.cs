using System.Diagnostics;

namespace Billing.Diagnostics;

/// <summary>
/// Where the spans of a billing call come from: Orleans' grain-call activities (with activity propagation on silos and
/// clients, a call's trace crosses from the HTTP gateway into every grain it reaches) and Npgsql's statements.
/// </summary>
public static class BillingTracing
{
    /// <summary>Orleans' grain-call spans (client and server sides; "Application" covers the grain calls of our grains).</summary>
    public static readonly string[] OrleansSources = ["Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];

    /// <summary>Npgsql's ActivitySource: one span per command or batch (the ledger's group commit is one).</summary>
    public const string NpgsqlSource = "Npgsql";

    /// <summary>
    /// Ours: the shared ledger commit of <see cref="Storage.LedgerWriter"/>, which carries the writes of several
    /// accounts' calls in one statement. Its span is a child of the first write's call and links to every write's call,
    /// so each usage's trace reaches the SQL that committed it.
    /// </summary>
    public const string SourceName = "Billing";

    /// <summary>Every source a silo exports spans from.</summary>
    public static readonly string[] SiloSources = [.. OrleansSources, NpgsqlSource, SourceName];

    internal static readonly ActivitySource Source = new(SourceName);
}
