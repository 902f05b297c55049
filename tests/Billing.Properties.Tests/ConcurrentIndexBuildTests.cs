using Billing.Storage;

namespace Billing.Properties.Tests;

/// <summary>
/// Which schema files the migrator applies outside a transaction: exactly those that build one index concurrently, and
/// a file that mixes such a build with anything else is refused before it runs (PostgreSQL would run the other
/// statements without the file's transaction, so a failure half-way would leave them applied and the file unrecorded).
/// </summary>
public sealed class ConcurrentIndexBuildTests
{
    [Fact]
    public void Only_the_open_errors_and_due_webhook_deliveries_indexes_of_the_shipped_schema_are_built_outside_a_transaction()
    {
        var builds = Directory.GetFiles(Path.Combine(SqlParameterisationTests.RepoRoot(), "sql", "billing"), "*.sql").Order()
            .Select(path => ConcurrentIndexBuild.Of(Path.GetFileName(path), File.ReadAllText(path)))
            .OfType<ConcurrentIndexBuild>()
            .ToList();

        Assert.Equal(
            [("0016_open_billing_errors_index.sql", "billing_error_open_idx"), ("0017_webhook_deliveries_due_per_endpoint_index.sql", "webhook_delivery_endpoint_due_idx")],
            builds.Select(build => (build.File, build.Index)).ToArray());
    }

    [Theory]
    [InlineData("-- a comment\nCREATE INDEX CONCURRENTLY IF NOT EXISTS some_idx ON t (a);\n", "some_idx")]
    [InlineData("create unique index concurrently if not exists some_idx\n  on t (a, b)\n  where not done", "some_idx")]
    public void A_file_of_one_concurrent_build_is_applied_outside_a_transaction(string sql, string index) =>
        Assert.Equal(index, ConcurrentIndexBuild.Of("f.sql", sql)!.Index);

    [Fact]
    public void A_file_without_a_concurrent_build_runs_in_its_transaction() =>
        Assert.Null(ConcurrentIndexBuild.Of("f.sql", "-- built CONCURRENTLY elsewhere\nCREATE INDEX some_idx ON t (a);"));

    [Theory]
    [InlineData("CREATE INDEX CONCURRENTLY IF NOT EXISTS some_idx ON t (a);\nALTER TABLE t ADD COLUMN b int;")]
    [InlineData("ALTER TABLE t ADD COLUMN b int;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS some_idx ON t (b);")]
    [InlineData("CREATE INDEX CONCURRENTLY some_idx ON t (a);")]
    [InlineData("CREATE INDEX CONCURRENTLY IF NOT EXISTS \"Some idx\" ON t (a);")]
    [InlineData("DROP INDEX CONCURRENTLY some_idx;")]
    public void A_file_that_mixes_a_concurrent_build_with_anything_else_is_refused(string sql) =>
        Assert.Throws<InvalidOperationException>(() => ConcurrentIndexBuild.Of("f.sql", sql));
}
