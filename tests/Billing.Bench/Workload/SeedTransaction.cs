using Npgsql;

namespace Billing.Bench.Workload;

/// <summary>The baseline every ratio is against: the seed's lock-based transaction, in its own tables.</summary>
public static class SeedTransaction
{
    /// <summary>
    /// deduct_from_project of the seed: BEGIN; SELECT … FOR UPDATE; INSERT history; UPDATE balance; COMMIT.
    /// (Npgsql sends BEGIN together with the first statement: 4 round trips, one fewer than SeaORM/sqlx.)
    /// </summary>
    public static async Task<Outcome> SeedDeductAsync(NpgsqlDataSource db, Guid project, Guid user, Guid modelId)
    {
        await using var connection = await db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        decimal balance;
        await using (var select = new NpgsqlCommand(
            "SELECT project, \"user\", balance, currency, created_at, updated_at FROM seed_project_billing WHERE project = $1 FOR UPDATE", connection, transaction))
        {
            select.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = project });
            await using var reader = await select.ExecuteReaderAsync();
            if (!await reader.ReadAsync()) return Outcome.Refused("Project billing account not found");
            balance = reader.GetDecimal(2);
        }

        if (balance < BenchUsage.Cost)
        {
            await transaction.RollbackAsync();
            return Outcome.Refused("Project balance insufficient");
        }

        var now = DateTimeOffset.UtcNow;
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO seed_project_billing_history (uid, project, "user", amount, currency, reason, extra, created_at)
            VALUES ($1, $2, NULL, $3, 'USD', 'ai_usage', $4::jsonb, $5)
            """, connection, transaction))
        {
            insert.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = Guid.NewGuid() });
            insert.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = project });
            insert.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = -BenchUsage.Cost });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue =
                $"{{\"model_id\":\"{modelId}\",\"input_tokens\":{BenchUsage.InputTokens},\"output_tokens\":{BenchUsage.OutputTokens},\"deducted_from\":\"project\"}}" });
            insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
            await insert.ExecuteNonQueryAsync();
        }

        await using (var update = new NpgsqlCommand(
            "UPDATE seed_project_billing SET \"user\" = $2, balance = $3, currency = $4, updated_at = $5 WHERE project = $1", connection, transaction))
        {
            update.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = project });
            update.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = user });
            update.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = balance - BenchUsage.Cost });
            update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "USD" });
            update.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
            await update.ExecuteNonQueryAsync();
        }

        await transaction.CommitAsync();
        return Outcome.Ok(BenchUsage.Cost);
    }
}
