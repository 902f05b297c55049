using System.Threading.Channels;
using Npgsql;

namespace Billing.Bench;

/// <summary>
/// db-shared: what "account grains of one silo share round trips" would do at the database. Writes of any
/// accounts queue here; a few writer loops each take everything queued (up to <see cref="MaxBatch"/>) and send it
/// as one NpgsqlBatch — one round trip, one implicit transaction, one commit and WAL flush — then answer all.
/// </summary>
public sealed class SharedCommitter : IAsyncDisposable
{
    public const int MaxBatch = 512;

    private readonly NpgsqlDataSource db;
    private readonly Channel<(NpgsqlBatchCommand Command, TaskCompletionSource<bool> Done)>[] queues;
    private readonly Task[] writers;
    private long batches;
    private long writes;

    public SharedCommitter(NpgsqlDataSource db, int writerCount)
    {
        this.db = db;
        // Accounts are partitioned over the writers (as they would be over a silo's writer connections): two
        // transactions in flight never lock the same account rows, so they cannot deadlock.
        queues = Enumerable.Range(0, writerCount)
            .Select(_ => Channel.CreateUnbounded<(NpgsqlBatchCommand, TaskCompletionSource<bool>)>(new UnboundedChannelOptions { SingleReader = true }))
            .ToArray();
        writers = queues.Select(q => Task.Run(() => WriteLoop(q.Reader))).ToArray();
    }

    public double AverageBatch => batches == 0 ? 0 : (double)Interlocked.Read(ref writes) / Interlocked.Read(ref batches);

    public async Task<Outcome> WriteAsync(Guid project, Guid user, Guid modelId)
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var queue = queues[(project.GetHashCode() & int.MaxValue) % queues.Length];
        await queue.Writer.WriteAsync((Database.ExperimentCommand(project, user, modelId), done));
        return await done.Task ? Outcome.Ok(Database.Cost) : Outcome.Refused("insufficient");
    }

    private async Task WriteLoop(ChannelReader<(NpgsqlBatchCommand Command, TaskCompletionSource<bool> Done)> queue)
    {
        var pending = new List<(NpgsqlBatchCommand Command, TaskCompletionSource<bool> Done)>(MaxBatch);
        while (await queue.WaitToReadAsync())
        {
            pending.Clear();
            while (pending.Count < MaxBatch && queue.TryRead(out var item)) pending.Add(item);
            if (pending.Count == 0) continue;
            try
            {
                await using var batch = db.CreateBatch();
                foreach (var (command, _) in pending) batch.BatchCommands.Add(command);
                var results = new bool[pending.Count];
                await using (var reader = await batch.ExecuteReaderAsync())
                {
                    var i = 0;
                    do
                    {
                        if (await reader.ReadAsync()) results[i] = reader.GetInt64(0) == 1;
                        i++;
                    }
                    while (await reader.NextResultAsync());
                }

                Interlocked.Increment(ref batches);
                Interlocked.Add(ref writes, pending.Count);
                for (var i = 0; i < pending.Count; i++) pending[i].Done.TrySetResult(results[i]);
            }
            catch (Exception e)
            {
                foreach (var (_, done) in pending) done.TrySetException(e);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var queue in queues) queue.Writer.TryComplete();
        await Task.WhenAll(writers);
    }
}
