using System.Text.RegularExpressions;

namespace Billing.Properties.Tests;

/// <summary>
/// The silo's connections skip Npgsql's session reset (<c>No Reset On Close</c>, AddBillingGrains): that is only safe
/// while no grain code leaves session state on a pooled connection. A statement or call that would (a setting, a
/// listener, an advisory lock, a temporary table, a cursor, an explicit transaction) fails this test until reviewed.
/// The schema migrator is the one exception: it opens a connection of its own, outside the pool.
/// </summary>
public partial class SessionStateTests
{
    [GeneratedRegex(@"\bSET\s+(SESSION\s+|LOCAL\s+)?\w+\s*(=|TO\b)|\bRESET\s+\w|\bLISTEN\b|pg_advisory_|\bTEMP(ORARY)?\s+TABLE\b|\bDECLARE\s+\w+\s+(BINARY\s+)?(INSENSITIVE\s+)?(NO\s+)?(SCROLL\s+)?CURSOR\b|BeginTransaction|set_config\s*\(", RegexOptions.IgnoreCase)]
    private static partial Regex SessionState();

    // The SET of an UPDATE (the assignments follow it, maybe on the next line) is not a setting.
    [GeneratedRegex(@"\bUPDATE\b[^;]*$", RegexOptions.IgnoreCase)]
    private static partial Regex OpenUpdate();

    /// <summary>The places in <paramref name="text"/> that would leave session state.</summary>
    private static IEnumerable<Match> Offending(string text) =>
        SessionState().Matches(text).Where(m =>
            !(m.Value.StartsWith("SET", StringComparison.OrdinalIgnoreCase) && OpenUpdate().IsMatch(text[Math.Max(0, m.Index - 300)..m.Index])));

    public static IEnumerable<object[]> GrainFiles() =>
        Directory.GetFiles(Path.Combine(SqlParameterisationTests.RepoRoot(), "Grains"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .Where(f => Path.GetFileName(f) != "SchemaMigrator.cs")
            .Order()
            .Select(f => new object[] { Path.GetRelativePath(SqlParameterisationTests.RepoRoot(), f) });

    [Theory]
    [MemberData(nameof(GrainFiles))]
    public void Grain_code_leaves_no_session_state_on_a_pooled_connection(string file)
    {
        var text = File.ReadAllText(Path.Combine(SqlParameterisationTests.RepoRoot(), file));
        var offending = Offending(text)
            .Select(m => (Number: text[..m.Index].Count(c => c == '\n') + 1, m.Value))
            .Where(m => !text.Split('\n')[m.Number - 1].TrimStart().StartsWith("//", StringComparison.Ordinal)) // prose, not code
            .Select(m => $"{file}:{m.Number}: {m.Value}")
            .ToList();
        Assert.True(offending.Count == 0, "Session state on a pooled connection (the silo skips the reset):\n" + string.Join('\n', offending));
    }

    [Theory]
    [InlineData("SET LOCAL plan_cache_mode = force_generic_plan")]
    [InlineData("SET search_path TO billing")]
    [InlineData("SELECT pg_advisory_lock(1)")]
    [InlineData("LISTEN billing_events")]
    [InlineData("CREATE TEMP TABLE x (id int)")]
    [InlineData("DECLARE c CURSOR FOR SELECT 1")]
    [InlineData("await using var tx = await connection.BeginTransactionAsync();")]
    [InlineData("SELECT set_config('work_mem', '64MB', false)")]
    public void The_check_sees_each_kind_of_session_state(string line) => Assert.NotEmpty(Offending(line));

    [Theory]
    [InlineData("UPDATE billing_error SET resolved = true, resolved_at = acct.now")]
    [InlineData("UPDATE {table.Accounts} t SET {setList}")]
    [InlineData("ON CONFLICT (scope, account, hour, model_id) DO UPDATE SET requests = u.requests + EXCLUDED.requests")]
    [InlineData("UPDATE webhook_delivery d\n    SET claimed_by = $2, claimed_until = now()")]
    public void Updates_are_not_session_state(string line) => Assert.Empty(Offending(line));
}
