using System.Threading.Channels;
using Billing.Accounts;
using Npgsql;

namespace Billing.Storage;

/// <summary>
/// Reads the stored versions of this silo's accounts together: the ledger's <c>version</c> and the holds'
/// <c>holds_seq</c> (<see cref="StoredVersion"/>). An account reads them before it refuses a call for balance (a
/// refusal writes nothing, so no guard would notice another activation's top-up or void), and in a dry
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

    /// <summary>The account's stored versions; <see cref="StoredVersion.Missing"/> when it is not stored.</summary>
    public Task<StoredVersion> ReadAsync(AccountTable table, Guid id)
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

    private static async Task<Dictionary<(AccountTable Table, Guid Id), StoredVersion>> ReadVersionsAsync((AccountTable Table, Guid Id)[] accounts, NpgsqlConnection connection)
    {
        await using var batch = new NpgsqlBatch(connection);
        foreach (var (table, id) in accounts)
        {
            var command = new NpgsqlBatchCommand($"SELECT version, holds_seq FROM {table.Accounts} WHERE {table.Key} = $1");
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
            batch.BatchCommands.Add(command);
        }

        var versions = new Dictionary<(AccountTable, Guid), StoredVersion>(accounts.Length);
        await using var reader = await batch.ExecuteReaderAsync();
        foreach (var account in accounts)
        {
            versions[account] = await reader.ReadAsync() ? new StoredVersion(reader.GetInt64(0), reader.GetInt64(1)) : StoredVersion.Missing;
            await reader.NextResultAsync();
        }

        return versions;
    }

    private sealed class PendingRead(AccountTable table, Guid id)
    {
        public AccountTable Table { get; } = table;

        public Guid Id { get; } = id;

        public TaskCompletionSource<StoredVersion> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>
/// What an account's row says it is at: <paramref name="Version"/> moves with every history row (balance, quota),
/// <paramref name="HoldsVersion"/> (<c>holds_seq</c>) with every hold placed or ended, which writes no history row.
/// </summary>
public readonly record struct StoredVersion(long Version, long HoldsVersion)
{
    /// <summary>No such account is stored.</summary>
    public static readonly StoredVersion Missing = new(-1, -1);

    /// <summary>What the row of <paramref name="account"/> says when it is the one stored.</summary>
    internal static StoredVersion Of(Billing.Accounts.AccountState account) => new(account.Version, account.HoldsVersion);
}
