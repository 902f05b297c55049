using System.Threading.Channels;
using Billing.Storage;
using Npgsql;

namespace Billing.Bench.Workload;

/// <summary>
/// db-shared: what "account grains of one silo share round trips" does at the database, with writer loops the bench
/// sizes (--xp-writers) and counts. Account writes (the grains' statement, <see cref="LedgerStore.CommitCommand"/>)
/// queue here; each writer loop takes everything queued (up to <see cref="MaxBatch"/>) and sends it as one
/// statement — one round trip, one implicit transaction, one commit and WAL flush — then answers all.
/// </summary>
public sealed class SharedCommitter : IAsyncDisposable
{
    public const int MaxBatch = 512;

    private readonly NpgsqlDataSource db;
    private readonly Channel<(LedgerCommit Commit, TaskCompletionSource<bool> Done)>[] queues;
    private readonly Task[] writers;
    private long batches;
    private long writes;

    public SharedCommitter(NpgsqlDataSource db, int writerCount)
    {
        this.db = db;
        // Accounts are partitioned over the writers (as they would be over a silo's writer connections): two
        // transactions in flight never lock the same account rows, so they cannot deadlock.
        queues = Enumerable.Range(0, writerCount)
            .Select(_ => Channel.CreateUnbounded<(LedgerCommit, TaskCompletionSource<bool>)>(new UnboundedChannelOptions { SingleReader = true }))
            .ToArray();
        writers = queues.Select(q => Task.Run(() => WriteLoop(q.Reader))).ToArray();
    }

    public double AverageBatch => batches == 0 ? 0 : (double)Interlocked.Read(ref writes) / Interlocked.Read(ref batches);

    /// <summary>As <see cref="LedgerStore.CommitAsync"/>: true when written, false on a version conflict.</summary>
    public async Task<bool> CommitAsync(LedgerCommit commit)
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var queue = queues[(commit.After.Id.GetHashCode() & int.MaxValue) % queues.Length];
        await queue.Writer.WriteAsync((commit, done));
        return await done.Task;
    }

    private async Task WriteLoop(ChannelReader<(LedgerCommit Commit, TaskCompletionSource<bool> Done)> queue)
    {
        var pending = new List<(LedgerCommit Commit, TaskCompletionSource<bool> Done)>(MaxBatch);
        while (await queue.WaitToReadAsync())
        {
            pending.Clear();
            while (pending.Count < MaxBatch && queue.TryRead(out var item)) pending.Add(item);
            if (pending.Count == 0) continue;
            try
            {
                // As the silo's writer: one statement for the accounts of the batch (each account is in flight once).
                var group = new LedgerCommitGroup(pending.ConvertAll(p => p.Commit));
                await using var batch = db.CreateBatch();
                batch.BatchCommands.Add(LedgerStore.CommitCommand(group));
                var written = new HashSet<Guid>();
                await using (var reader = await batch.ExecuteReaderAsync())
                {
                    while (await reader.ReadAsync()) written.Add(reader.GetGuid(0));
                }

                var results = pending.ConvertAll(p => written.Contains(p.Commit.After.Id));
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
