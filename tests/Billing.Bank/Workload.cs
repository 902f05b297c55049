using System.Collections.Concurrent;
using System.Diagnostics;

namespace Billing.Bank;

public enum OpType
{
    InitUser,
    InitProject,
    Usage,
    PersonalUsage,
    TopUp,
}

/// <summary>One logical operation: retried with the same id (usage id / credit id / account id) until it has a definite answer.</summary>
public sealed class Op
{
    public required int Id { get; init; }
    public required OpType Type { get; init; }
    public Guid Key { get; init; } = Guid.NewGuid();
    public Guid Project { get; init; }
    public Guid User { get; init; }
    public long Input { get; init; }
    public long Output { get; init; }
    public decimal Amount { get; init; }
    public AccountKind Kind { get; init; }
    public Guid Account { get; init; }
    public Outcome? Answer { get; set; }
    public int Attempts { get; set; }
    public bool HadUnknown { get; set; }

    public override string ToString() => $"op#{Id} {Type} key={Key} project={Project} user={User} account={Account} in={Input} out={Output} amount={Amount} -> {Answer}";
}

public sealed class Stats
{
    public int Attempted;
    public int Acknowledged;
    public int Refused;
    public int NotFound;
    public int Conflicts;
    public int Invalid;
    public int UnknownThenResolved;
    public int Unresolved;
    public int Attempts;
    public int UnknownAttempts;
    public int DroppedOnPurpose;
    public int Hung;
    public long MaxAttemptMs;
    public int SilosKilled;
    public int PostgresRestarts;
    public int ConnectionDrops;
    public int Replayed;
    public int ReplayMismatches;
    public string TransportName = "none";
}

/// <summary>Runs operations with retries; shared by the workers, the resolution phase and the replay.</summary>
public sealed class Runner(Func<ITransport> transport, Guid model, TimeSpan requestTimeout, Stats stats, Action<string> violation)
{
    public ConcurrentQueue<Op> Pending { get; } = new();

    public ConcurrentBag<Op> All { get; } = [];

    public Task<Outcome> Send(Op op, CancellationToken ct) => op.Type switch
    {
        OpType.InitUser => transport().InitUser(op.Account, ct),
        OpType.InitProject => transport().InitProject(op.Account, op.User, ct),
        OpType.Usage => transport().Usage(op.Key, op.Project, op.User, model, op.Input, op.Output, ct),
        OpType.PersonalUsage => transport().PersonalUsage(op.Key, op.User, model, op.Input, op.Output, ct),
        OpType.TopUp => transport().TopUp(op.Kind, op.Account, op.Amount, op.Key, ct),
        _ => throw new InvalidOperationException(),
    };

    /// <summary>One attempt with its deadline; checks that it returned within the deadline (no hang).</summary>
    public async Task<Outcome> Attempt(Op op, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var watch = Stopwatch.StartNew();
        var outcome = await Send(op, cts.Token);
        watch.Stop();
        Interlocked.Increment(ref stats.Attempts);
        var ms = watch.ElapsedMilliseconds;
        long seen;
        while ((seen = Interlocked.Read(ref stats.MaxAttemptMs)) < ms && Interlocked.CompareExchange(ref stats.MaxAttemptMs, ms, seen) != seen)
        {
        }

        if (watch.Elapsed > timeout + TimeSpan.FromSeconds(5))
        {
            Interlocked.Increment(ref stats.Hung);
            violation($"request hung {watch.Elapsed.TotalSeconds:F1}s past its {timeout.TotalSeconds}s timeout: {op}");
        }

        if (!outcome.Definite) Interlocked.Increment(ref stats.UnknownAttempts);
        return outcome;
    }

    /// <summary>Retries with the same id until a definite answer or <paramref name="giveUpAt"/>; then the op waits in <see cref="Pending"/>.</summary>
    public async Task Execute(Op op, DateTime giveUpAt, Random rng, bool dropFirst)
    {
        if (op.Answer is null && op.Attempts == 0)
        {
            All.Add(op);
            Interlocked.Increment(ref stats.Attempted);
        }

        for (var k = 0; ; k++)
        {
            var drop = dropFirst && k == 0;
            if (drop) Interlocked.Increment(ref stats.DroppedOnPurpose);
            op.Attempts++;
            var outcome = await Attempt(op, drop ? TimeSpan.FromMilliseconds(rng.Next(1, 60)) : requestTimeout);
            if (outcome.Definite)
            {
                Settle(op, outcome);
                return;
            }

            op.HadUnknown = true;
            if (DateTime.UtcNow >= giveUpAt)
            {
                Pending.Enqueue(op);
                return;
            }

            await Task.Delay(Math.Min(2000, 50 * (1 << Math.Min(k, 6))) + rng.Next(0, 100));
        }
    }

    private void Settle(Op op, Outcome outcome)
    {
        op.Answer = outcome;
        if (op.HadUnknown) Interlocked.Increment(ref stats.UnknownThenResolved);
        switch (outcome.Kind)
        {
            case OutcomeKind.Ok: Interlocked.Increment(ref stats.Acknowledged); break;
            case OutcomeKind.Refused: Interlocked.Increment(ref stats.Refused); break;
            case OutcomeKind.NotFound: Interlocked.Increment(ref stats.NotFound); break;
            case OutcomeKind.Conflict: Interlocked.Increment(ref stats.Conflicts); break;
            default:
                Interlocked.Increment(ref stats.Invalid);
                violation($"unexpected definite answer {outcome} for {op}");
                break;
        }
    }
}
