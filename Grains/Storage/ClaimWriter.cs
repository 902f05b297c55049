using System.Threading.Channels;
using Billing.Events;
using Billing.Hosting;
using Npgsql;

namespace Billing.Storage;

/// <summary>
/// Stores the refusals of this silo together: the refusals of one kind that are waiting at the same moment go in one
/// statement, one round trip and one transaction, each still claiming its key (a usage id, a hold id) on its own
/// (<c>ON CONFLICT DO NOTHING</c> per row: I3, I5). In a dry spell every call of an account's agents is refused, and one
/// statement and commit per refusal made each cost PostgreSQL several times what a charge does, which the other accounts
/// then waited behind (README, "Storage and concurrency": "Refusals are stored together").
/// <para>
/// Two claims of one key never share a statement: the second waits for the first's outcome. Claims go in key order,
/// so two silos claiming the same keys at once cannot wait on each other in a cycle (a ledger transaction inserting the
/// same keys in another order still can, when copies of one call race on two silos: PostgreSQL then aborts one, and a
/// batch of claims so aborted is sent again, up to <see cref="MaxAttempts"/> times in all). A statement the database
/// refuses as data (SQLSTATE class 22 or 23) is sent again one claim at a time, so that the claim at fault fails alone;
/// any other fault fails the claims it carried, whose outcome the caller then does not know (a retry with the same key
/// finds it).
/// </para>
/// </summary>
/// <param name="key">The key a claim takes.</param>
/// <param name="store">
/// Stores the claims (in key order, at most <see cref="MaxPerStatement"/>, each key once) in one statement on the
/// connection, and returns the keys it claimed: a key already taken is not among them.
/// </param>
internal sealed class ClaimWriter<TClaim>(NpgsqlDataSource dataSource, Func<TClaim, Guid> key, Func<TClaim[], NpgsqlConnection, Task<HashSet<Guid>>> store)
    : IAsyncDisposable
{
    /// <summary>The most claims one statement stores.</summary>
    public const int MaxPerStatement = 256;

    /// <summary>How often a statement PostgreSQL aborted to break a deadlock is sent, in all.</summary>
    private const int MaxAttempts = 3;

    private readonly Channel<PendingClaim> queue = Channel.CreateUnbounded<PendingClaim>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock starting = new();
    private Task? loop; // started by the first claim: a store that never refuses keeps no loop

    /// <summary>True when this claim took its key (its rows are stored); false when the key was taken before.</summary>
    public Task<bool> ClaimAsync(TClaim claim)
    {
        var pending = new PendingClaim(claim, key(claim));
        if (!queue.Writer.TryWrite(pending)) throw new ObjectDisposedException(nameof(ClaimWriter<TClaim>));
        if (loop is null)
        {
            lock (starting) loop ??= Task.Run(WriteLoop);
        }

        return pending.Completion.Task;
    }

    public async ValueTask DisposeAsync()
    {
        queue.Writer.TryComplete();
        if (loop is not null) await loop;
    }

    private async Task WriteLoop()
    {
        await using var connection = new WriterConnection(dataSource);
        var batch = new List<PendingClaim>(MaxPerStatement);
        List<PendingClaim> held = []; // claims of a key the last statement carried already: the next one's
        while (held.Count > 0 || await connection.WaitToReadAsync(queue.Reader))
        {
            var keys = new HashSet<Guid>();
            List<PendingClaim> next = [];
            foreach (var claim in held) (keys.Add(claim.Key) ? batch : next).Add(claim);
            while (batch.Count < MaxPerStatement && queue.Reader.TryRead(out var claim)) (keys.Add(claim.Key) ? batch : next).Add(claim);
            held = next;
            batch.Sort((a, b) => a.Key.CompareTo(b.Key));
            await Store(batch, connection);
            batch.Clear();
        }
    }

    private async Task Store(List<PendingClaim> batch, WriterConnection connection, int attempt = 1)
    {
        try
        {
            var claimed = await store(batch.Select(c => c.Claim).ToArray(), await connection.OpenAsync());
            foreach (var claim in batch) claim.Completion.TrySetResult(claimed.Contains(claim.Key));
        }
        catch (PostgresException error) when (batch.Count > 1 && BillingFaults.IsDeterministic(error))
        {
            foreach (var claim in batch) await Store([claim], connection);
        }
        catch (PostgresException error) when (attempt < MaxAttempts && error.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
        {
            // Aborted to break a cycle (a ledger transaction inserting the same ids in another order): nothing was
            // written, and the same statement is likely to go through now.
            await Store(batch, connection, attempt + 1);
        }
        catch (Exception exception)
        {
            if (exception is not PostgresException) await connection.ReleaseAsync(); // the connection may be broken
            foreach (var claim in batch) claim.Completion.TrySetException(exception);
        }
    }

    private sealed class PendingClaim(TClaim claim, Guid key)
    {
        public TClaim Claim { get; } = claim;

        public Guid Key { get; } = key;

        public TaskCompletionSource<bool> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>What the claim statements (<see cref="ClaimWriter{TClaim}"/>) share: their events' parameters and their result.</summary>
internal static class ClaimStatements
{
    /// <summary>
    /// The refusals' events (balance.depleted, billing_error.created), each with the key of its claim, as four arrays
    /// (key, id, type, data): stored with their error or not at all (E1).
    /// </summary>
    public static void AddEvents(NpgsqlParameterCollection p, IEnumerable<(Guid Key, BillingEventRow Event)> events)
    {
        var rows = events.ToArray();
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = rows.Select(e => e.Key).ToArray() });
        p.Add(new NpgsqlParameter<Guid[]> { TypedValue = rows.Select(e => e.Event.Id).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = rows.Select(e => e.Event.Type).ToArray() });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = rows.Select(e => e.Event.Data).ToArray() });
    }

    /// <summary>Runs the statement and returns the keys it claimed (its one column).</summary>
    public static async Task<HashSet<Guid>> ClaimedAsync(NpgsqlCommand command)
    {
        var claimed = new HashSet<Guid>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) claimed.Add(reader.GetGuid(0));
        return claimed;
    }
}
