using System.Data.Common;

namespace Billing.Storage;

/// <summary>Columns are read by name, so a query's column list can change without renumbering its readers.</summary>
internal static class DataReaderExtensions
{
    /// <summary>The column's value; null for SQL NULL when <typeparamref name="T"/> is nullable.</summary>
    public static T Get<T>(this DbDataReader reader, string column)
    {
        var ordinal = reader.GetOrdinal(column);
        if (reader.IsDBNull(ordinal)) return default(T) is null ? default! : throw new InvalidCastException($"Column {column} is NULL.");
        return reader.GetFieldValue<T>(ordinal);
    }
}
