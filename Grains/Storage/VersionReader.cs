using System.Threading.Channels;
using Billing.Accounts;
using Npgsql;

namespace Billing.Storage;

/// <summary>
/// Reads the stored versions of this silo's accounts together. An account reads its version before it refuses a call
/// for balance (a refusal writes nothing, so no version guard would notice another activation's top-up), and in a dry
/// spell every call is refused: one round trip and one pooled connection per refusing account made these reads two
/// thirds of a refused SPREAD usage's cost (README, "Storage and concurrency": "Refusals are stored together"). The
/// reads waiting at the same moment go in one round trip, one <c>key = $1</c> statement per account
/// (<see cref="KeyReads"/> says why not <c>= ANY</c>), on a connection the loop keeps while reads keep coming
/// (<see cref="WriterConnection"/>). Reads of one account share its statement. A fault fails every read it carried;
/// their accounts then reload, as after any failed read.
/// </summary>
internal sealed class VersionReader(NpgsqlDataSource dataSource) : IAsyncDisposable
{
    /// <summary>The most accounts one round trip reads.</summary>
    public const int MaxPerRoundTrip = 256;

    private readonly Channel<PendingRead> queue = Channel.CreateUnbounded<PendingRead>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock starting = new();
    private Task? loop; // started by the first read

    /// <summary>The account's stored version; -1 when it is not stored.</summary>
    public Task<long> ReadAsync(AccountTable table, Guid id)
    {
        var pending = new PendingRead(table, id);
        if (!queue.Writer.TryWrite(pending)) throw new ObjectDisposedException(nameof(VersionReader));
        if (loop is null)
        {
            lock (starting) loop ??= Task.Run(ReadLoop);
        }

        return pending.Completion.Task;
    }

    public async ValueTask DisposeAsync()
    {
        queue.Writer.TryComplete();
        if (loop is not null) await loop;
    }

    private async Task ReadLoop()
    {
        await using var connection = new WriterConnection(dataSource);
        var batch = new List<PendingRead>(MaxPerRoundTrip);
        while (await connection.WaitToReadAsync(queue.Reader))
        {
            batch.Clear();
            while (batch.Count < MaxPerRoundTrip && queue.Reader.TryRead(out var read)) batch.Add(read);
            try
            {
                var versions = await ReadVersionsAsync(batch.Select(r => (r.Table, r.Id)).Distinct().ToArray(), await connection.OpenAsync());
                foreach (var read in batch) read.Completion.TrySetResult(versions[(read.Table, read.Id)]);
            }
            catch (Exception exception)
            {
                if (exception is not PostgresException) await connection.ReleaseAsync(); // the connection may be broken
                foreach (var read in batch) read.Completion.TrySetException(exception);
            }
        }
    }

    private static async Task<Dictionary<(AccountTable Table, Guid Id), long>> ReadVersionsAsync((AccountTable Table, Guid Id)[] accounts, NpgsqlConnection connection)
    {
        await using var batch = new NpgsqlBatch(connection);
        foreach (var (table, id) in accounts)
        {
            var command = new NpgsqlBatchCommand($"SELECT version FROM {table.Accounts} WHERE {table.Key} = $1");
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
            batch.BatchCommands.Add(command);
        }

        var versions = new Dictionary<(AccountTable, Guid), long>(accounts.Length);
        await using var reader = await batch.ExecuteReaderAsync();
        foreach (var account in accounts)
        {
            versions[account] = await reader.ReadAsync() ? reader.GetInt64(0) : -1;
            await reader.NextResultAsync();
        }

        return versions;
    }

    private sealed class PendingRead(AccountTable table, Guid id)
    {
        public AccountTable Table { get; } = table;

        public Guid Id { get; } = id;

        public TaskCompletionSource<long> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
