using System.Text.RegularExpressions;
using Billing.Storage;

namespace Billing.Tests;

/// <summary>The statement builder numbers placeholders in declaration order, and binding follows the same order.</summary>
public class LedgerStatementTests
{
    public static TheoryData<AccountKind> Kinds => new() { AccountKind.User, AccountKind.Project };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Commit_statement_of_every_shape_uses_every_declared_parameter_once_by_number(AccountKind kind)
    {
        for (var shape = LedgerStatements.CommitShape.AccountAndHistory; shape <= LedgerStatements.CommitShape.All; shape++)
        {
            var statement = LedgerStatements.Commit(kind, shape);
            AssertPlaceholders(statement.Sql, statement.ParameterNames);
        }
    }

    [Fact]
    public void A_commit_statement_has_only_the_parts_its_shape_writes()
    {
        var usage = LedgerStatements.Commit(AccountKind.Project, LedgerStatements.CommitShape.Charges | LedgerStatements.CommitShape.Grants).Sql;
        Assert.Contains("usage AS (", usage);
        Assert.Contains("grants_changed AS (", usage);
        Assert.DoesNotContain("credit_grant_entry", usage); // a charge that draws on one grant names it in its history row
        var spanning = LedgerStatements.Commit(AccountKind.Project,
            LedgerStatements.CommitShape.Charges | LedgerStatements.CommitShape.Grants | LedgerStatements.CommitShape.GrantEntries).Sql;
        Assert.Contains("grant_entries AS (", spanning);
        Assert.DoesNotContain("usage_hourly", usage); // the usage rows add up on the account row until their hour closes
        Assert.Contains("usage_hour_cost = a.usage_hour_cost", usage);
        var closing = LedgerStatements.Commit(AccountKind.Project, LedgerStatements.CommitShape.Charges | LedgerStatements.CommitShape.UsageHours).Sql;
        Assert.Contains("INSERT INTO usage_hourly", closing);
        Assert.DoesNotContain("billing_hold", usage);
        Assert.DoesNotContain("billing_event", usage);
        Assert.DoesNotContain("billing_error", usage);
        var all = LedgerStatements.Commit(AccountKind.Project, LedgerStatements.CommitShape.All).Sql;
        foreach (var part in new[] { "usage", "resolved", "events", "resolved_events", "hold_new", "hold_end", "hold_err", "grants_new", "grants_changed", "grant_entries" })
        {
            Assert.Contains(part + " AS (", all);
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Create_statement_uses_every_declared_parameter_by_number(AccountKind kind) =>
        AssertPlaceholders(LedgerStatements.Create(kind).Sql, LedgerStatements.Create(kind).ParameterNames);

    [Fact]
    public void A_parameter_declared_twice_is_refused()
    {
        var parameters = new SqlParameters<int>();
        parameters.Value("amount", "numeric", i => (decimal)i);
        Assert.Throws<InvalidOperationException>(() => parameters.Value("amount", "numeric", i => (decimal)i));
    }

    [Fact]
    public void Array_insert_binds_one_array_per_column_in_row_order_and_joins_each_row_to_its_account()
    {
        var parameters = new SqlParameters<Owned<(decimal Amount, string Reason)>[]>();
        var sql = new ArrayInsert<Owned<(decimal Amount, string Reason)>[], (decimal Amount, string Reason)>(parameters, "t", "rows", rows => rows)
            .Column("amount", "numeric", r => r.Amount)
            .Column("reason", "text", r => r.Reason)
            .Shared("fixed", "'x'")
            .Shared("account", ArrayInsert<Owned<(decimal, string)>[], (decimal, string)>.Owner)
            .Sql(gate: "acct");
        var statement = parameters.Build(sql);
        Assert.Contains("unnest($1::numeric[], $2::text[], $3::uuid[]) AS r(amount, reason, owner_id) JOIN acct ON acct.account_id = r.owner_id", statement.Sql);
        Assert.Contains("INSERT INTO t (amount, reason, fixed, account)", statement.Sql);
        Assert.Contains("SELECT r.amount, r.reason, 'x', r.owner_id", statement.Sql);

        Guid first = Guid.NewGuid(), second = Guid.NewGuid();
        var command = statement.BatchCommand([new(first, (1.5m, "a")), new(second, (2.25m, "b"))]);
        Assert.Equal([1.5m, 2.25m], (decimal[])command.Parameters[0].Value!);
        Assert.Equal(["a", "b"], (string[])command.Parameters[1].Value!);
        Assert.Equal([first, second], (Guid[])command.Parameters[2].Value!);
    }

    [Fact]
    public void The_commit_statement_moves_each_account_under_its_own_guards_and_returns_the_ids_it_moved()
    {
        var sql = LedgerStatements.Commit(AccountKind.Project, LedgerStatements.CommitShape.Charges).Sql;
        Assert.Contains("WHERE t.project = a.account_id AND t.version = a.expected_version AND t.holds_seq = a.expected_holds_seq", sql);
        Assert.Contains("RETURNING a.account_id", sql);
        Assert.EndsWith("SELECT account_id FROM acct", sql.TrimEnd());
    }

    private static void AssertPlaceholders(string sql, IReadOnlyList<string> names)
    {
        Assert.Equal(names.Count, names.Distinct().Count());
        var used = Regex.Matches(sql, @"\$(\d+)").Select(m => int.Parse(m.Groups[1].Value)).Distinct().Order().ToArray();
        Assert.Equal(Enumerable.Range(1, names.Count), used);
    }
}
