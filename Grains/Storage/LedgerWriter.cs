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
/// WAL flush are most of PostgreSQL's work per write, and this shares them (figures: docs/performance.md, "Should
/// the account grains of one silo share round trips").
/// <para>
/// Accounts are partitioned over a few writer loops, so one account is always written by the same connection
/// and writes are sorted by account, so two transactions never wait on each other's rows in opposite order.
/// The commits of one kind of account in a transaction are one statement (<see cref="LedgerCommitGroup"/>): PostgreSQL's
/// fixed cost per statement is most of its work for one usage. Every account keeps its own version guard; a caller
/// learns its outcome only after the shared transaction has committed (I4). A statement that fails (a usage id
/// stored before) is retried with each of its commits on its own, and the one that fails then is failed alone.
/// </para>
/// <para>
/// Each partition's queue is bounded (<see cref="BillingLimits.LedgerWriterQueue"/>): when the database falls
/// behind, a write that does not fit is refused at once (<see cref="LedgerWriterFullException"/>) instead of
/// waiting without bound.
/// </para>
/// </summary>
public sealed class LedgerWriter : IAsyncDisposable
{
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
        var settings = limits?.Value ?? new BillingLimits();
        var capacity = settings.LedgerWriterQueue;
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(limits), capacity, $"{BillingLimits.Section}:LedgerWriterQueue must be at least 1.");
        if (settings.LedgerWriters is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(limits), settings.LedgerWriters, $"{BillingLimits.Section}:LedgerWriters must be 1–64.");
        // FullMode.Wait with TryWrite: a full queue makes TryWrite return false (nothing dropped silently).
        queues = Enumerable.Range(0, settings.LedgerWriters).Select(_ => Channel.CreateBounded<PendingWrite>(new BoundedChannelOptions(capacity)
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
        var write = new PendingWrite(commit);
        var partition = (commit.After.Id.GetHashCode() & int.MaxValue) % queues.Length;
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
        await using var connection = new WriterConnection(dataSource);
        var batch = new List<PendingWrite>(MaxWritesPerTransaction);
        while (await connection.WaitToReadAsync(reader))
        {
            while (batch.Count < MaxWritesPerTransaction && reader.TryRead(out var write)) batch.Add(write);
            batch.Sort((a, b) => a.AccountId.CompareTo(b.AccountId));
            await Commit(batch, connection);
            batch.Clear();
        }
    }

    private async Task Commit(List<PendingWrite> writes, WriterConnection connection)
    {
        // The loop runs outside any call: the span joins the first caller's trace and links to every caller's.
        using var span = BillingTracing.Source.StartActivity("ledger commit", ActivityKind.Internal, writes[0].Caller,
            links: writes.Where(w => w.Caller != default).Select(w => new ActivityLink(w.Caller)));
        span?.SetTag("billing.ledger.writes", writes.Count);
        var statements = Statements(writes);
        for (var attempt = 1; statements.Count > 0; attempt++)
        {
            try
            {
                var written = await Execute(statements, connection);
                for (var i = 0; i < statements.Count; i++)
                {
                    foreach (var write in statements[i].Writes) write.Completion.TrySetResult(written[i].Contains(write.AccountId));
                }

                return;
            }
            catch (StatementFailedException failure) when (failure.Index < statements.Count && failure.Error.SqlState is not (PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure))
            {
                // One statement failed and took the shared transaction with it: retry its commits one by one to find
                // the one at fault, and fail that one alone.
                var failed = statements[failure.Index];
                statements.RemoveAt(failure.Index);
                if (failed.Writes.Count == 1)
                {
                    logger.LogDebug("A commit in a shared ledger transaction of {WriteCount} write(s) failed ({SqlState}); retrying the others", writes.Count, failure.Error.SqlState);
                    failed.Writes[0].Completion.TrySetException(failure.Error);
                }
                else
                {
                    statements.InsertRange(failure.Index, failed.Writes.Select(w => new CommitStatement([w])));
                }
            }
            catch (StatementFailedException failure) when (attempt < MaxAttempts)
            {
                logger.LogWarning("Shared ledger commit of {WriteCount} write(s) hit {SqlState}; retrying", writes.Count, failure.Error.SqlState);
            }
            catch (Exception exception)
            {
                // Not an error the server answered: the connection may be broken, so the next transaction takes another.
                if (exception is not StatementFailedException) await connection.ReleaseAsync();
                var error = exception is StatementFailedException failure ? failure.Error : exception;
                foreach (var write in statements.SelectMany(s => s.Writes)) write.Completion.TrySetException(error);
                return;
            }
        }
    }

    /// <summary>One statement per kind of account, with at most one commit per account (a second goes to a statement after it).</summary>
    private static List<CommitStatement> Statements(List<PendingWrite> writes)
    {
        var statements = new List<CommitStatement>(2);
        foreach (var write in writes)
        {
            var statement = statements.Find(s => s.Kind == write.Commit.After.Kind && !s.Writes.Exists(w => w.AccountId == write.AccountId));
            if (statement is null) statements.Add(new CommitStatement([write]));
            else statement.Writes.Add(write);
        }

        return statements;
    }

    /// <summary>
    /// One round trip, one implicit transaction; the accounts each statement wrote (an account may be in two statements:
    /// the second then finds it moved), which only count once the reader has seen the transaction commit.
    /// </summary>
    private static async Task<HashSet<Guid>[]> Execute(List<CommitStatement> statements, WriterConnection connection)
    {
        await using var batch = new NpgsqlBatch(await connection.OpenAsync());
        foreach (var statement in statements) batch.BatchCommands.Add(LedgerStore.CommitCommand(statement.Group));
        var written = new HashSet<Guid>[statements.Count];
        var index = 0; // the statement whose result is being read: the one that failed, on an error
        try
        {
            await using var reader = await batch.ExecuteReaderAsync();
            for (; index < statements.Count; index++)
            {
                if (index > 0) await reader.NextResultAsync(); // a statement's error surfaces as its result is reached
                written[index] = [];
                while (await reader.ReadAsync()) written[index].Add(reader.GetGuid(0));
            }
        }
        catch (PostgresException error)
        {
            throw new StatementFailedException(index, error);
        }

        return written;
    }

    /// <summary>A statement of a shared transaction failed (<see cref="Index"/> = the statements' count: the commit itself).</summary>
    private sealed class StatementFailedException(int index, PostgresException error) : Exception(error.Message, error)
    {
        public int Index { get; } = index;

        public PostgresException Error { get; } = error;
    }

    /// <summary>The writes one statement commits: accounts of one kind, each once.</summary>
    private sealed class CommitStatement(List<PendingWrite> writes)
    {
        private LedgerCommitGroup? group;

        public List<PendingWrite> Writes { get; } = writes;

        public AccountKind Kind => Writes[0].Commit.After.Kind;

        /// <summary>Gathered when first executed, and kept for a retry of the same writes.</summary>
        public LedgerCommitGroup Group => group ??= new LedgerCommitGroup(Writes.ConvertAll(w => w.Commit));
    }

    private sealed class PendingWrite(LedgerCommit commit)
    {
        public LedgerCommit Commit { get; } = commit;

        public Guid AccountId => Commit.After.Id;

        public TaskCompletionSource<bool> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The trace of the grain call that queued this write (none while nobody traces).</summary>
        public ActivityContext Caller { get; } = Activity.Current?.Context ?? default;
    }
}

/// <summary>The ledger writer's queue is full: the write was not queued and nothing was written.</summary>
public sealed class LedgerWriterFullException() : Exception("The silo's ledger writer has too many writes queued.");
