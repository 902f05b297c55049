using Npgsql;

namespace Billing.Storage;

/// <summary><c>model_pricing</c>: append-only prices per million tokens, each with the moment it takes effect.</summary>
public sealed class PricingStore(NpgsqlDataSource dataSource)
{
    public async Task<List<ModelPrice>> LoadAsync(Guid modelId, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT uid, input_price_per_million, output_price_per_million, currency, effective_from, created_at
            FROM model_pricing WHERE model_version_id = $1 ORDER BY effective_from, created_at
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = modelId });
        var prices = new List<ModelPrice>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            prices.Add(new ModelPrice(reader.GetGuid(0), modelId, reader.GetDecimal(1), reader.GetDecimal(2), reader.GetString(3),
                reader.GetFieldValue<DateTimeOffset>(4), reader.GetFieldValue<DateTimeOffset>(5)));
        }

        return prices;
    }

    /// <summary>Every model's prices (the whole schedule is small: one row per price change).</summary>
    public async Task<List<ModelPrice>> LoadAllAsync(CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT uid, model_version_id, input_price_per_million, output_price_per_million, currency, effective_from, created_at
            FROM model_pricing ORDER BY model_version_id, effective_from, created_at
            """);
        var prices = new List<ModelPrice>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            prices.Add(new ModelPrice(reader.GetGuid(0), reader.GetGuid(1), reader.GetDecimal(2), reader.GetDecimal(3), reader.GetString(4),
                reader.GetFieldValue<DateTimeOffset>(5), reader.GetFieldValue<DateTimeOffset>(6)));
        }

        return prices;
    }

    public async Task InsertAsync(ModelPrice price, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO model_pricing (uid, model_version_id, input_price_per_million, output_price_per_million, currency, effective_from, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<Guid> { TypedValue = price.Id });
        p.Add(new NpgsqlParameter<Guid> { TypedValue = price.ModelId });
        p.Add(new NpgsqlParameter<decimal> { TypedValue = price.InputPricePerMillion });
        p.Add(new NpgsqlParameter<decimal> { TypedValue = price.OutputPricePerMillion });
        p.Add(new NpgsqlParameter<string> { TypedValue = price.Currency });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = price.EffectiveFrom });
        p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = price.CreatedAt });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
