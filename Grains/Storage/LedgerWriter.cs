using System.Diagnostics;
using System.Threading.Channels;
using Billing.Accounts;
using Billing.Diagnostics;
using Billing.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Billing.Storage;

/// <summary>
/// Commits the writes of many accounts of this silo together: each account grain already groups its own
/// requests (group commit), and this writer sends the statements of different accounts that are ready at the
/// same moment in one round trip and one transaction: with many busy accounts, the round trip, the commit and its
/// WAL flush are most of PostgreSQL's work per write, and this shares them (figures: README, "Benchmark").
/// <para>
/// Accounts are partitioned over a few writer loops, so one account is always written by the same connection
/// and statements are sorted by account, so two transactions never wait on each other's rows in opposite order.
/// Every statement keeps its own version guard; a caller learns its outcome only after the shared transaction
/// has committed (I4). A statement that fails (a usage id stored before) is failed alone and the others retried.
/// </para>
/// <para>
/// Each partition's queue is bounded (<see cref="BillingLimits.LedgerWriterQueue"/>): when the database falls
/// behind, a write that does not fit is refused at once (<see cref="LedgerWriterFullException"/>) instead of
/// waiting without bound.
/// </para>
/// </summary>
public sealed class LedgerWriter : IAsyncDisposable
{
    private const int Partitions = 4;
    private const int MaxWritesPerTransaction = 64;
    private const int MaxAttempts = 5;

    private readonly NpgsqlDataSource dataSource;
    private readonly ILogger<LedgerWriter> logger;
    private readonly Channel<PendingWrite>[] queues;
    private readonly Task[] loops;
    private volatile bool disposed;

    public LedgerWriter(NpgsqlDataSource dataSource, ILogger<LedgerWriter> logger, IOptions<BillingLimits>? limits = null)
    {
        this.dataSource = dataSource;
        this.logger = logger;
        var capacity = (limits?.Value ?? new BillingLimits()).LedgerWriterQueue;
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(limits), capacity, $"{BillingLimits.Section}:LedgerWriterQueue must be at least 1.");
        // FullMode.Wait with TryWrite: a full queue makes TryWrite return false (nothing dropped silently).
        queues = Enumerable.Range(0, Partitions).Select(_ => Channel.CreateBounded<PendingWrite>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        })).ToArray();
        loops = queues.Select(queue => Task.Run(() => WriteLoop(queue.Reader))).ToArray();
    }

    /// <summary>
    /// As <see cref="LedgerStore.CommitAsync"/>: true when written, false on a version conflict. Throws
    /// <see cref="LedgerWriterFullException"/> at once, having written nothing, when the partition's queue is full.
    /// </summary>
    public Task<bool> CommitAsync(LedgerCommit commit)
    {
        var write = new PendingWrite(commit.After.Id, () => LedgerStore.CommitCommand(commit));
        var partition = (commit.After.Id.GetHashCode() & int.MaxValue) % Partitions;
        if (!queues[partition].Writer.TryWrite(write))
        {
            if (disposed) throw new ObjectDisposedException(nameof(LedgerWriter));
            throw new LedgerWriterFullException();
        }

        return write.Completion.Task;
    }

    public async ValueTask DisposeAsync()
    {
        disposed = true;
        foreach (var queue in queues) queue.Writer.TryComplete();
        await Task.WhenAll(loops);
    }

    private async Task WriteLoop(ChannelReader<PendingWrite> reader)
    {
        var batch = new List<PendingWrite>(MaxWritesPerTransaction);
        while (await reader.WaitToReadAsync())
        {
            while (batch.Count < MaxWritesPerTransaction && reader.TryRead(out var write)) batch.Add(write);
            batch.Sort((a, b) => a.AccountId.CompareTo(b.AccountId));
            await Commit(batch);
            batch.Clear();
        }
    }

    private async Task Commit(List<PendingWrite> writes)
    {
        // The loop runs outside any call: the span joins the first caller's trace and links to every caller's.
        using var span = BillingTracing.Source.StartActivity("ledger commit", ActivityKind.Internal, writes[0].Caller,
            links: writes.Where(w => w.Caller != default).Select(w => new ActivityLink(w.Caller)));
        span?.SetTag("billing.ledger.writes", writes.Count);
        for (var attempt = 1; writes.Count > 0; attempt++)
        {
            try
            {
                var written = await Execute(writes);
                for (var i = 0; i < writes.Count; i++) writes[i].Completion.TrySetResult(written[i]);
                return;
            }
            catch (StatementFailedException failure) when (failure.Index < writes.Count && failure.Error.SqlState is not (PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure))
            {
                // One statement failed and took the shared transaction with it: fail that one, retry the others.
                logger.LogDebug("Statement {Index} of a shared ledger commit of {WriteCount} failed ({SqlState}); retrying the others", failure.Index, writes.Count, failure.Error.SqlState);
                writes[failure.Index].Completion.TrySetException(failure.Error);
                writes.RemoveAt(failure.Index);
            }
            catch (StatementFailedException failure) when (attempt < MaxAttempts)
            {
                logger.LogWarning("Shared ledger commit of {WriteCount} write(s) hit {SqlState}; retrying", writes.Count, failure.Error.SqlState);
            }
            catch (Exception exception)
            {
                var error = exception is StatementFailedException failure ? failure.Error : exception;
                foreach (var write in writes) write.Completion.TrySetException(error);
                return;
            }
        }
    }

    /// <summary>One round trip, one implicit transaction; results only count once the reader has seen it commit.</summary>
    private async Task<bool[]> Execute(List<PendingWrite> writes)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var batch = new NpgsqlBatch(connection);
        foreach (var write in writes) batch.BatchCommands.Add(write.NewCommand());
        var written = new bool[writes.Count];
        var statement = 0; // the statement whose result is being read: the one that failed, on an error
        try
        {
            await using var reader = await batch.ExecuteReaderAsync();
            for (; statement < writes.Count; statement++)
            {
                if (statement > 0) await reader.NextResultAsync(); // a statement's error surfaces as its result is reached
                await reader.ReadAsync();
                written[statement] = reader.GetInt64(0) == 1;
            }
        }
        catch (PostgresException error)
        {
            throw new StatementFailedException(statement, error);
        }

        return written;
    }

    /// <summary>A statement of a shared transaction failed (<see cref="Index"/> = writes.Count: the commit itself).</summary>
    private sealed class StatementFailedException(int index, PostgresException error) : Exception(error.Message, error)
    {
        public int Index { get; } = index;

        public PostgresException Error { get; } = error;
    }

    private sealed class PendingWrite(Guid accountId, Func<NpgsqlBatchCommand> build)
    {
        public Guid AccountId { get; } = accountId;

        public TaskCompletionSource<bool> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The trace of the grain call that queued this write (none while nobody traces).</summary>
        public ActivityContext Caller { get; } = Activity.Current?.Context ?? default;

        /// <summary>A fresh command for each attempt: a batch command belongs to one batch.</summary>
        public NpgsqlBatchCommand NewCommand() => build();
    }
}

/// <summary>The ledger writer's queue is full: the write was not queued and nothing was written.</summary>
public sealed class LedgerWriterFullException() : Exception("The silo's ledger writer has too many writes queued.");
