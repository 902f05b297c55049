using System.Threading.Channels;
using Billing.Events;
using Billing.Hosting;
using Npgsql;
using NpgsqlTypes;

namespace Billing.Storage;

/// <summary>
/// Stores the refusals of this silo's usages together: the refusals that are waiting at the same moment go in one
/// statement, one round trip and one transaction, each still claiming its usage id on its own (I3, I5). In a dry spell
/// every call of an account's agents is refused, and one statement and commit per refusal made each cost PostgreSQL
/// about ten times what a charge does, which the other accounts then waited behind (README, "Storage and concurrency").
/// <para>
/// A statement the database refuses as data (SQLSTATE class 22 or 23) is sent again one refusal at a time, so that the
/// refusal at fault fails alone; any other fault fails the refusals it carried, whose outcome the caller then does not
/// know (a retry with the same usage id finds it).
/// </para>
/// </summary>
internal sealed class RefusalWriter : IAsyncDisposable
{
    /// <summary>The most refusals one statement stores.</summary>
    public const int MaxPerStatement = 256;

    private readonly NpgsqlDataSource dataSource;
    private readonly Channel<PendingRefusal> queue = Channel.CreateUnbounded<PendingRefusal>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task loop;

    public RefusalWriter(NpgsqlDataSource dataSource)
    {
        this.dataSource = dataSource;
        loop = Task.Run(WriteLoop);
    }

    /// <summary>True when this refusal claimed its usage id (stored with its error and events); false when the id already had an answer.</summary>
    public Task<bool> ClaimAsync(RefusalRecord refusal)
    {
        var pending = new PendingRefusal(refusal);
        if (!queue.Writer.TryWrite(pending)) throw new ObjectDisposedException(nameof(RefusalWriter));
        return pending.Completion.Task;
    }

    public async ValueTask DisposeAsync()
    {
        queue.Writer.TryComplete();
        await loop;
    }

    private async Task WriteLoop()
    {
        await using var connection = new WriterConnection(dataSource);
        var batch = new List<PendingRefusal>(MaxPerStatement);
        List<PendingRefusal> held = []; // refusals of a usage id the last statement carried already: the next one's
        while (held.Count > 0 || await connection.WaitToReadAsync(queue.Reader))
        {
            // Two refusals of one usage id never share a statement: the second waits for the first's outcome.
            var ids = new HashSet<Guid>();
            List<PendingRefusal> next = [];
            foreach (var refusal in held) (ids.Add(refusal.Refusal.UsageId) ? batch : next).Add(refusal);
            while (batch.Count < MaxPerStatement && queue.Reader.TryRead(out var refusal)) (ids.Add(refusal.Refusal.UsageId) ? batch : next).Add(refusal);
            held = next;
            await Store(batch, connection);
            batch.Clear();
        }
    }

    private static async Task Store(List<PendingRefusal> batch, WriterConnection connection)
    {
        try
        {
            var claimed = await Execute(batch, connection);
            foreach (var refusal in batch) refusal.Completion.TrySetResult(claimed.Contains(refusal.Refusal.UsageId));
        }
        catch (PostgresException error) when (batch.Count > 1 && BillingFaults.IsDeterministic(error))
        {
            foreach (var refusal in batch) await Store([refusal], connection);
        }
        catch (Exception exception)
        {
            if (exception is not PostgresException) await connection.ReleaseAsync(); // the connection may be broken
            foreach (var refusal in batch) refusal.Completion.TrySetException(exception);
        }
    }

    private static async Task<HashSet<Guid>> Execute(List<PendingRefusal> batch, WriterConnection connection)
    {
        // By usage id: two silos storing refusals of the same ids at once (a call sent again to another silo) then claim
        // them in the same order, so neither waits for the other in a cycle.
        var refusals = batch.Select(p => p.Refusal).OrderBy(r => r.UsageId).ToArray();
        var events = refusals.SelectMany(r => r.Events.Select(e => (r.UsageId, Event: e))).ToArray();
        // Rows in that order (ORDER BY ord), each refusal's events in theirs (balance.depleted, then billing_error.created).
        await using var command = new NpgsqlCommand("""
            WITH input AS (
                SELECT * FROM unnest($1::uuid[], $2::numeric[], $3::text[], $4::bigint[], $5::bigint[], $6::uuid[], $7::text[],
                                     $8::timestamptz[], $9::text[], $10::uuid[], $11::text[], $12::uuid[]) WITH ORDINALITY
                    AS i(usage_id, cost, currency, input_tokens, output_tokens, billing_error_id, message, created_at, scope, scope_id, details, hold_id, ord)),
            rec AS (
                INSERT INTO usage_record (usage_id, outcome, cost, currency, input_tokens, output_tokens, billing_error_id, message, created_at)
                SELECT usage_id, 'refused', cost, currency, input_tokens, output_tokens, billing_error_id, message, created_at FROM input
                ORDER BY ord
                ON CONFLICT (usage_id) DO NOTHING
                RETURNING usage_id),
            err AS (
                INSERT INTO billing_error (id, scope, scope_id, error_type, message, details, usage_id, hold_id, created_at)
                SELECT i.billing_error_id, i.scope, i.scope_id, 'insufficient_balance', i.message, i.details::jsonb, i.usage_id, i.hold_id, i.created_at
                FROM input i JOIN rec USING (usage_id)
                ORDER BY i.ord),
            ev AS (
                INSERT INTO billing_event (id, type, scope, scope_id, billing_error_id, data, created_at)
                SELECT e.id, e.type, i.scope, i.scope_id, i.billing_error_id, e.data::jsonb, i.created_at
                FROM unnest($13::uuid[], $14::uuid[], $15::text[], $16::text[]) WITH ORDINALITY AS e(usage_id, id, type, data, ord)
                JOIN input i USING (usage_id) JOIN rec USING (usage_id)
                ORDER BY e.ord)
            SELECT usage_id FROM rec
            """, await connection.OpenAsync());
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.UsageId).ToArray() });
        p.Add(new NpgsqlParameter<decimal[]> { TypedValue = refusals.Select(r => r.Cost).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Currency).ToArray() });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = refusals.Select(r => r.InputTokens).ToArray() });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = refusals.Select(r => r.OutputTokens).ToArray() });
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.BillingErrorId).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Message).ToArray() });
        p.Add(new NpgsqlParameter<DateTime[]> { TypedValue = refusals.Select(r => r.CreatedAt.UtcDateTime).ToArray(), DataTypeName = "timestamptz[]" });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Scope).ToArray() });
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = refusals.Select(r => r.ScopeId).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = refusals.Select(r => r.Details).ToArray() });
        p.Add(new NpgsqlParameter { Value = refusals.Select(r => r.HoldId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        // The refusals' events (balance.depleted, billing_error.created): stored with their error or not at all (E1).
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = events.Select(e => e.UsageId).ToArray() });
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = events.Select(e => e.Event.Id).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = events.Select(e => e.Event.Type).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = events.Select(e => e.Event.Data).ToArray() });
        var claimed = new HashSet<Guid>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) claimed.Add(reader.GetGuid(0));
        return claimed;
    }

    private sealed class PendingRefusal(RefusalRecord refusal)
    {
        public RefusalRecord Refusal { get; } = refusal;

        public TaskCompletionSource<bool> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>A refused usage as stored: its usage record, its one billing error (of <see cref="Scope"/>) and that error's events.</summary>
internal sealed record RefusalRecord(
    Guid UsageId, decimal Cost, string Currency, long InputTokens, long OutputTokens, Guid BillingErrorId, string Message,
    DateTimeOffset CreatedAt, string Scope, Guid ScopeId, string Details, Guid? HoldId, IReadOnlyList<BillingEventRow> Events);
