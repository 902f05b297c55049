using Npgsql;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary>
/// Declares the parameters of one statement by name and type, in code. Each declaration returns the placeholder to
/// put in the SQL text (<c>$3::numeric</c>) and remembers how to read the value from the statement's input, so the
/// text is built once per shape (and prepared once per connection by Npgsql) and binding can never drift from it.
/// The type travels in the text, so nulls and empty arrays need no inference.
/// </summary>
public sealed class SqlParameters<TInput>
{
    private readonly List<Binding> bindings = [];

    /// <summary>A scalar; a null (of a reference or nullable type) is sent as SQL NULL of the declared type.</summary>
    public string Value<T>(string name, string type, Func<TInput, T> value) =>
        Declare(name, type, input => value(input) is { } v ? new NpgsqlParameter<T> { TypedValue = v } : new NpgsqlParameter { Value = DBNull.Value });

    /// <summary>A nullable value-type scalar (Npgsql's generic parameter cannot send a null <c>T?</c>).</summary>
    public string Nullable<T>(string name, string type, NpgsqlDbType dbType, Func<TInput, T?> value) where T : struct =>
        Declare(name, type, input => new NpgsqlParameter { NpgsqlDbType = dbType, Value = value(input) is { } v ? v : DBNull.Value });

    /// <summary>One array of a column of <paramref name="rows"/> (for <c>unnest</c>); <paramref name="type"/> is the element type.</summary>
    public string Array<TRow, T>(string name, string type, Func<TInput, IReadOnlyList<TRow>> rows, Func<TRow, T> value) =>
        Declare(name, type + "[]", input =>
        {
            var source = rows(input);
            var values = new T[source.Count];
            for (var i = 0; i < values.Length; i++) values[i] = value(source[i]);
            return new NpgsqlParameter<T[]> { TypedValue = values };
        });

    public SqlStatement<TInput> Build(string sql) => new(sql, bindings.ToArray());

    private string Declare(string name, string type, Func<TInput, NpgsqlParameter> bind)
    {
        if (bindings.Any(b => b.Name == name)) throw new InvalidOperationException($"Parameter {name} is declared twice.");
        // The declared type goes with every value too: a prepared statement is only reused while its parameters' types
        // match, and Npgsql would otherwise infer some from the value (an empty or all-null DateTime array is not
        // timestamptz[]), so one commit in a different shape made every later one on that connection run unprepared.
        bindings.Add(new Binding(name, input =>
        {
            var parameter = bind(input);
            parameter.DataTypeName = type;
            return parameter;
        }));
        return $"${bindings.Count}::{type}";
    }

    internal sealed record Binding(string Name, Func<TInput, NpgsqlParameter> Bind);
}

/// <summary>A statement whose text is fixed and whose parameters are bound from one input value, in declaration order.</summary>
public sealed class SqlStatement<TInput>
{
    private readonly SqlParameters<TInput>.Binding[] bindings;

    internal SqlStatement(string sql, SqlParameters<TInput>.Binding[] bindings)
    {
        Sql = sql;
        this.bindings = bindings;
    }

    public string Sql { get; }

    /// <summary>The parameters' names, in the order of their placeholders ($1, $2 …).</summary>
    public IReadOnlyList<string> ParameterNames => bindings.Select(b => b.Name).ToArray();

    public NpgsqlBatchCommand BatchCommand(TInput input)
    {
        var command = new NpgsqlBatchCommand(Sql);
        foreach (var binding in bindings) command.Parameters.Add(binding.Bind(input));
        return command;
    }

    public NpgsqlCommand Command(NpgsqlDataSource dataSource, TInput input)
    {
        var command = dataSource.CreateCommand(Sql);
        foreach (var binding in bindings) command.Parameters.Add(binding.Bind(input));
        return command;
    }
}

/// <summary>A row of a statement that writes several accounts at once, with the account it belongs to.</summary>
public readonly record struct Owned<TRow>(Guid AccountId, TRow Row);

/// <summary>
/// One part of a statement that inserts many rows sent as one array per column:
/// <c>INSERT INTO t (a, b) SELECT r.a, r.b FROM unnest($1::uuid[], $2::numeric[], $3::uuid[]) AS r(a, b, owner_id) JOIN gate …</c>.
/// A column is one <see cref="Column{T}"/> line; a value shared by every row is one <see cref="Shared"/> line. Each row
/// belongs to an account (<see cref="Owned{TRow}"/>), and with a gate (the account update) only the rows of the accounts
/// the gate wrote are inserted: one statement writes the rows of many accounts, each under its own version guard.
/// </summary>
public sealed class ArrayInsert<TInput, TRow>(SqlParameters<TInput> parameters, string table, string name, Func<TInput, IReadOnlyList<Owned<TRow>>> rows)
{
    /// <summary>The SQL expression of a row's account, for <see cref="Shared"/> (e.g. the history row's account column).</summary>
    public const string Owner = "r.owner_id";

    private readonly List<(string Column, string Expression)> columns = [];
    private readonly List<(string Alias, string Array)> arrays = [];

    /// <summary>A column taken from each row; <paramref name="cast"/> converts it on the way in (e.g. text → jsonb).</summary>
    public ArrayInsert<TInput, TRow> Column<T>(string column, string type, Func<TRow, T> value, string? cast = null)
    {
        arrays.Add((column, parameters.Array($"{name}.{column.Trim('"')}", type, rows, o => value(o.Row))));
        columns.Add((column, cast is null ? $"r.{column}" : $"r.{column}::{cast}"));
        return this;
    }

    /// <summary>A column whose value is not an array of its own: a placeholder, a SQL literal, <see cref="Owner"/> or a gate column.</summary>
    public ArrayInsert<TInput, TRow> Shared(string column, string expression)
    {
        columns.Add((column, expression));
        return this;
    }

    /// <summary>
    /// The INSERT; rows are written only for the accounts <paramref name="gate"/> (a CTE such as the account update,
    /// returning <c>account_id</c>) returned and, when given, where <paramref name="condition"/> (on the gate's columns) holds.
    /// </summary>
    public string Sql(string? gate = null, string? condition = null)
    {
        var sourceArrays = gate is null ? arrays : [.. arrays, ("owner_id", parameters.Array($"{name}.owner_id", "uuid", rows, o => o.AccountId))];
        var targetColumns = string.Join(", ", columns.Select(c => c.Column));
        var sourceValues = string.Join(", ", columns.Select(c => c.Expression));
        var arrayPlaceholders = string.Join(", ", sourceArrays.Select(a => a.Array));
        var arrayColumns = string.Join(", ", sourceArrays.Select(a => a.Alias));
        var join = gate is null ? "" : $"JOIN {gate} ON {gate}.account_id = {Owner}";
        var filter = condition is null ? "" : $"WHERE {condition}";
        return $"""
            INSERT INTO {table} ({targetColumns})
            SELECT {sourceValues}
            FROM unnest({arrayPlaceholders}) AS r({arrayColumns}) {join}
            {filter}
            """;
    }
}
