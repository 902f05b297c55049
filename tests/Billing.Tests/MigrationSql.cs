using Npgsql;

namespace Billing.Tests;

/// <summary>SQL written by hand into a database that migration tests build as an older version left it.</summary>
internal static class MigrationSql
{
    /// <summary>Runs <paramref name="sql"/> one statement per command (positional parameters allow no more), each with the values up to the highest <c>$n</c> it uses.</summary>
    public static async Task ExecuteAsync(NpgsqlConnection connection, string sql, params object[] values)
    {
        foreach (var statement in sql.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            await using var command = new NpgsqlCommand(statement, connection);
            var used = Enumerable.Range(1, values.Length).LastOrDefault(n => statement.Contains($"${n}", StringComparison.Ordinal));
            foreach (var value in values.Take(used)) command.Parameters.Add(new NpgsqlParameter { Value = value });
            await command.ExecuteNonQueryAsync();
        }
    }
}
