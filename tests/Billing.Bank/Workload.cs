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
    PlaceHold,
    CaptureHold,
    VoidHold,
    Grant,
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

    /// <summary>Holds: the hold (its placement's <see cref="Key"/>), its time to live, and what the agent means to do with it.</summary>
    public Guid HoldId { get; init; }
    public int TtlSeconds { get; init; }
    public string? Plan { get; init; }

    /// <summary>A capture sent without a usage id (its usage id is the hold id).</summary>
    public bool DefaultUsageId { get; init; }

    /// <summary>The only definite answer this op may get (a probe: a capture after a void, a void after a capture → 409).</summary>
    public OutcomeKind? Expect { get; init; }

    /// <summary>Grants.</summary>
    public GrantCategory Category { get; init; }
    public int Priority { get; init; }
    public DateTimeOffset EffectiveAt { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }

    public Outcome? Answer { get; set; }

    /// <summary>The answer of the replay after recovery, when it was sent again.</summary>
    public Outcome? ReplayAnswer { get; set; }
    public int Attempts { get; set; }
    public bool HadUnknown { get; set; }

    /// <summary>The project of a hold; none for a personal hold.</summary>
    public Guid? HoldProject => Project == Guid.Empty ? null : Project;

    public override string ToString() => Type switch
    {
        OpType.PlaceHold => $"op#{Id} {Type} hold={Key} project={HoldProject} user={User} in={Input} maxOut={Output} ttl={TtlSeconds}s plan={Plan} -> {Answer}",
        OpType.CaptureHold => $"op#{Id} {Type} hold={HoldId} usage={Key}{(DefaultUsageId ? " (default)" : "")} in={Input} out={Output} plan={Plan} expect={Expect} -> {Answer}",
        OpType.VoidHold => $"op#{Id} {Type} hold={HoldId} plan={Plan} expect={Expect} -> {Answer}",
        OpType.Grant => $"op#{Id} {Type} grant={Key} {Kind} {Account} amount={Amount} {Category} priority={Priority} effective={EffectiveAt:O} expires={ExpiresAt:O} -> {Answer}",
        _ => $"op#{Id} {Type} key={Key} project={Project} user={User} account={Account} in={Input} out={Output} amount={Amount} -> {Answer}",
    };
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
    public int HoldsPlaced;
    public int HoldsRefused;
    public int Captures;
    public int CapturesAboveHold;
    public int Shortfalls;
    public int LateCaptures;
    public int LateCapturesRefused;
    public int Voids;
    public int Abandoned;
    public int ConflictProbes;
    public int RacedRetries;
    public int GrantsGiven;
    public int GrantsExpired;
    public int H1Samples;
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
        OpType.PlaceHold => transport().PlaceHold(op.Key, op.HoldProject, op.User, model, op.Input, op.Output, op.TtlSeconds, ct),
        OpType.CaptureHold => transport().CaptureHold(op.HoldId, op.Input, op.Output, op.DefaultUsageId ? null : op.Key, ct),
        OpType.VoidHold => transport().VoidHold(op.HoldId, ct),
        OpType.Grant => transport().Grant(op.Kind, op.Account, op.Key, op.Amount, op.Category, op.Priority, op.EffectiveAt, op.ExpiresAt, ct),
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
        if (op.Expect is { } expected && outcome.Kind != expected) violation($"expected {expected}, answered {outcome}: {op}");
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
