using System.Text.RegularExpressions;

namespace Billing.Properties.Tests;

/// <summary>
/// Every SQL command text in Grains/Storage is parameterised: values travel as NpgsqlParameters ($1, $2, @name), and
/// the only things interpolated into SQL text are table and column names from <c>AccountTable</c>, constant column
/// lists and fragments built from those. A new interpolation hole in a SQL string fails this test until reviewed.
/// </summary>
public partial class SqlParameterisationTests
{
    /// <summary>Holes allowed in SQL text, each a name or fragment that is never a value.</summary>
    private static readonly Regex[] AllowedHoles =
    [
        new(@"^table\.(Accounts|Key|History|Counterparty|Scope)$"),                 // AccountTable: fixed identifiers
        new(@"^Columns$"),                                                           // const column list
        new(@"^(creator|credit)$"),                                                  // literal column expressions chosen by table.Kind
        new(@"^column$"),                                                            // "usage_id" / "credit_id" literals from callers
        // SqlStatement / LedgerStatements: placeholders returned by SqlParameters ("$n::type") and lists of them or of
        // column names, all built from constants in code.
        new(@"^BillingEventTypes\.\w+$"),                                           // event type constants (Grains.Interfaces/Events.cs)
        new(@"^(available|balance)$"),                                               // EventStatements: placeholders from SqlParameters
        new(@"^perWrite$"),                                                          // LedgerStatements: the placeholder of the errors resolved per write
        new(@"^(ids|remaining|states|owners)$"),                                    // GrantStatements: array placeholders of changed grants
        new(@"^(hours|models|currencies|requestCounts|inputTokens|outputTokens|costs)$"), // LedgerStatements: closed usage hours' array placeholders
        new(@"^(account|now|expectedVersion|expectedHoldsVersion|table|gate|gateSource|filter|condition|project|creator|createdAt|credit|currency|claim|decided|accountInsert|history|assignments|resolving|scope|names|values|targetColumns|sourceValues|arrayPlaceholders|arrayColumns|result|commonTableExpressions|join|conditions|setList|returnedColumns)$"),
    ];

    [GeneratedRegex(@"\$""""""(?<body>.*?)""""""", RegexOptions.Singleline)]
    private static partial Regex RawInterpolated();

    [GeneratedRegex(@"\$""(?<body>(?:[^""\\\n]|\\.)*)""")]
    private static partial Regex Interpolated();

    [GeneratedRegex(@"\b(SELECT|INSERT|UPDATE|DELETE|WITH|FROM|WHERE|VALUES|RETURNING)\b")]
    private static partial Regex SqlKeyword();

    [GeneratedRegex(@"(?<!\{)\{(?!\{)(?<hole>[^{}]+)\}")]
    private static partial Regex Hole();

    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Billing.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Billing.sln not found above " + AppContext.BaseDirectory);
    }

    public static IEnumerable<object[]> StorageFiles() =>
        Directory.GetFiles(Path.Combine(RepoRoot(), "Grains", "Storage"), "*.cs").Order().Select(f => new object[] { Path.GetFileName(f) });

    [Theory]
    [MemberData(nameof(StorageFiles))]
    public void Sql_text_interpolates_no_values(string file)
    {
        var source = File.ReadAllText(Path.Combine(RepoRoot(), "Grains", "Storage", file));
        var offending = new List<string>();
        foreach (var match in RawInterpolated().Matches(source).Concat(Interpolated().Matches(source)))
        {
            var body = match.Groups["body"].Value;
            if (!SqlKeyword().IsMatch(body)) continue; // a log or exception message, not SQL
            foreach (Match hole in Hole().Matches(body))
            {
                var expression = hole.Groups["hole"].Value.Trim();
                if (!AllowedHoles.Any(a => a.IsMatch(expression))) offending.Add($"{{{expression}}} in: {body.Trim()[..Math.Min(80, body.Trim().Length)]}…");
            }
        }

        Assert.True(offending.Count == 0, $"{file}: SQL text interpolates something that may be a value:\n" + string.Join("\n", offending));
    }

    [Theory]
    [MemberData(nameof(StorageFiles))]
    public void Sql_text_is_not_concatenated(string file)
    {
        var source = File.ReadAllText(Path.Combine(RepoRoot(), "Grains", "Storage", file));
        // "… " + value inside a command text: a string literal with SQL joined by + to something that is not a literal.
        var concatenation = new Regex(@"""[^""\n]*\b(SELECT|INSERT|UPDATE|DELETE|WHERE|VALUES)\b[^""\n]*""\s*\+|\+\s*""[^""\n]*\b(WHERE|VALUES|AND|OR|SET)\b");
        var hits = concatenation.Matches(source).Select(m => m.Value).ToList();
        Assert.True(hits.Count == 0, $"{file}: SQL built with +:\n" + string.Join("\n", hits));
    }

    [Fact]
    public void The_scan_sees_the_storage_commands()
    {
        // Guards the scan itself: if the regexes stopped matching, the tests above would pass vacuously.
        var sources = Directory.GetFiles(Path.Combine(RepoRoot(), "Grains", "Storage"), "*.cs").Select(File.ReadAllText).ToList();
        var sqlStrings = sources.Sum(s => RawInterpolated().Matches(s).Count(m => SqlKeyword().IsMatch(m.Groups["body"].Value)));
        Assert.True(sqlStrings >= 6, $"only {sqlStrings} interpolated SQL strings found");
        Assert.Contains(sources, s => s.Contains("{table.Accounts}", StringComparison.Ordinal));
        // And it would catch a value: this line must be rejected.
        var bad = "$\"\"\"SELECT balance FROM user_billing WHERE \"user\" = '{id}'\"\"\"";
        var holes = RawInterpolated().Matches(bad).SelectMany(m => Hole().Matches(m.Groups["body"].Value)).Select(h => h.Groups["hole"].Value).ToList();
        Assert.Equal(["id"], holes);
        Assert.DoesNotContain(AllowedHoles, a => a.IsMatch("id"));
    }
}
