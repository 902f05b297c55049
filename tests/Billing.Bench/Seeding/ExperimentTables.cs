using Billing.Bench.Processes;

namespace Billing.Bench.Seeding;

/// <summary>
/// The DB-only experiment's own copies of the tables the grains' commit writes, in their own schema: the grains'
/// statement, which names its tables without a schema, reaches them through the search path of
/// <see cref="BenchDatabase.Experiment"/>, and the grains' own tables stay untouched.
/// </summary>
public static class ExperimentTables
{
    public const string AccountTable = BenchDatabase.ExperimentSchema + ".project_billing";

    public const string Schema = $"""
        CREATE SCHEMA IF NOT EXISTS {BenchDatabase.ExperimentSchema};
        CREATE TABLE IF NOT EXISTS {AccountTable} (LIKE public.project_billing INCLUDING ALL);
        CREATE TABLE IF NOT EXISTS {AccountTable}_history (LIKE public.project_billing_history INCLUDING ALL);
        CREATE TABLE IF NOT EXISTS {BenchDatabase.ExperimentSchema}.usage_record (LIKE public.usage_record INCLUDING ALL);
        """;

    /// <summary>The real history table's foreign key to its account, which LIKE does not copy (--xp-fk).</summary>
    public const string ForeignKey = $"""
        ALTER TABLE {AccountTable}_history ADD FOREIGN KEY (project) REFERENCES {AccountTable} (project);
        """;
}
