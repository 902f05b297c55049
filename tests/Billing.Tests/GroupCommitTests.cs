using Billing.Accounts;
using Billing.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// The account's group commit as a unit: no cluster and no database, but the grain's one thread (a queue of
/// continuations run in order, <see cref="AccountThread"/>) and a ledger whose writes complete only when the test
/// says so (<see cref="GatedLedger"/>), so every interleaving here is deterministic. The PostgreSQL path of the
/// same class is covered by the grain tests.
/// </summary>
public sealed class GroupCommitTests
{
    private static readonly Guid Model = Guid.NewGuid();
    private readonly AccountThread thread = new();
    private readonly GatedLedger ledger = new(Account(balance: 10m, version: 1));

    private GroupCommit NewGroupCommit(int queueLimit = 2_048) =>
        new(ledger, AccountTable.Users, ledger.Stored.Id, queueLimit, NullLogger.Instance) { Committed = ledger.Stored };

    [Fact]
    public async Task Operations_queued_during_a_write_are_decided_in_arrival_order_and_go_together_in_the_next_write()
    {
        var commits = NewGroupCommit();
        var first = Charge(4m);
        _ = thread.Run(() => commits.Submit(first));
        Assert.Single(ledger.Writes);

        // While the first write is in flight, three more arrive: 5 fits in the 6 left, then 2 does not, then 1 does.
        var (second, third, fourth) = (Charge(5m), Charge(2m), Charge(1m));
        foreach (var charge in new[] { second, third, fourth }) _ = thread.Run(() => commits.Submit(charge));
        Assert.Single(ledger.Writes); // one batch at a time

        thread.Run(ledger.Writes[0].Apply);
        Assert.Equal(2, ledger.Writes.Count);
        var next = ledger.Writes[1].Commit;
        Assert.Equal(2, next.ExpectedVersion); // decided against the state the first write left
        Assert.Equal([second.Charge.UsageId, fourth.Charge.UsageId], next.Rows.Select(r => r.UsageId!.Value));
        Assert.Equal([3L, 4L], next.Rows.Select(r => r.Sequence));
        Assert.Equal([1m, 0m], next.Rows.Select(r => r.BalanceAfter));

        thread.Run(ledger.Writes[1].Apply);
        Assert.Equal(6m, (await first.Task).Value!.BalanceAfter);
        Assert.Equal(1m, (await second.Task).Value!.BalanceAfter);
        Assert.Equal(BillingStatus.InsufficientBalance, (await third.Task).Problem!.Status);
        Assert.Equal(0m, (await fourth.Task).Value!.BalanceAfter);
        Assert.Equal(0m, ledger.Stored.Balance);
    }

    [Fact]
    public async Task A_long_queue_goes_in_batches_of_at_most_MaxBatch()
    {
        var commits = NewGroupCommit();
        _ = thread.Run(() => commits.Submit(Credit(1m)));
        var queued = thread.Run(() => Enumerable.Range(0, GroupCommit.MaxBatch + 88).Select(_ => commits.Submit(Credit(1m))).ToArray());

        thread.Run(ledger.Writes[0].Apply);
        Assert.Equal(GroupCommit.MaxBatch, ledger.Writes[1].Commit.Rows.Count);
        thread.Run(ledger.Writes[1].Apply);
        Assert.Equal(88, ledger.Writes[2].Commit.Rows.Count);
        thread.Run(ledger.Writes[2].Apply);

        Assert.All(await Task.WhenAll(queued), c => Assert.True(c.IsOk));
        Assert.Equal(10m + 1 + GroupCommit.MaxBatch + 88, ledger.Stored.Balance);
    }

    [Fact]
    public async Task Callers_are_answered_only_after_the_write_holding_their_row_commits()
    {
        var commits = NewGroupCommit();
        var first = thread.Run(() => commits.Submit(Charge(1m)));
        var second = thread.Run(() => commits.Submit(Charge(2m)));
        Assert.False(first.IsCompleted);

        thread.Run(ledger.Writes[0].Apply);
        Assert.True(first.IsCompletedSuccessfully);
        Assert.False(second.IsCompleted); // decided, written, but not committed yet
        Assert.Equal(1, ledger.CommittedBatches);

        thread.Run(ledger.Writes[1].Apply);
        Assert.Equal(7m, (await second).Value!.BalanceAfter);
        Assert.Equal(2, ledger.CommittedBatches);
        Assert.Equal(ledger.Stored, commits.Committed);
    }

    [Fact]
    public async Task A_deterministic_refusal_fails_only_the_operation_at_fault_and_the_others_commit()
    {
        var commits = NewGroupCommit();
        var blocker = thread.Run(() => commits.Submit(Charge(1m)));
        var a = thread.Run(() => commits.Submit(Charge(1m)));
        var b = thread.Run(() => commits.Submit(Charge(1m)));
        var poisoned = Charge(1m);
        var poison = thread.Run(() => commits.Submit(poisoned));
        var d = thread.Run(() => commits.Submit(Charge(1m)));
        // From now on the database refuses any statement holding the poison's row, as a data error would.
        ledger.Answer = write =>
        {
            if (write.Commit.Charges.Any(c => c.UsageId == poisoned.Charge.UsageId)) write.Fail(new PostgresException("numeric field overflow", "ERROR", "ERROR", "22003"));
            else write.Apply();
        };

        thread.Run(ledger.Writes[0].Apply);

        // The batch of four, then its halves, then the failing half's halves.
        Assert.Equal([1, 4, 2, 2, 1, 1], ledger.Writes.Select(w => w.Commit.Rows.Count));
        await blocker;
        foreach (var other in new[] { a, b, d }) Assert.True((await other).IsOk);
        await Assert.ThrowsAsync<BillingOperationFailedException>(() => poison);
        Assert.Equal(6m, ledger.Stored.Balance);
        Assert.Equal(0, ledger.Loads); // the refusals wrote nothing: nothing to reload
    }

    [Fact]
    public async Task A_fault_fails_the_whole_batch_and_the_state_is_reloaded_before_the_next_decision_or_read()
    {
        var commits = NewGroupCommit();
        var blocker = thread.Run(() => commits.Submit(Charge(1m)));
        var y = thread.Run(() => commits.Submit(Charge(2m)));
        var z = thread.Run(() => commits.Submit(Credit(5m)));
        thread.Run(ledger.Writes[0].Apply);

        // The connection drops after the database committed: the outcome is unknown to the account.
        var lost = new TimeoutException("connection lost during commit");
        thread.Run(() => ledger.Writes[1].ApplyThenFail(lost));
        Assert.Same(lost, await Assert.ThrowsAsync<TimeoutException>(() => y));
        Assert.Same(lost, await Assert.ThrowsAsync<TimeoutException>(() => z));
        Assert.Equal(2, commits.Committed!.Version); // not assumed either way

        Assert.True(thread.Run(() => commits.ReloadIfNeeded()).IsCompletedSuccessfully); // what a read does first
        Assert.Equal(1, ledger.Loads);
        Assert.Equal(ledger.Stored, commits.Committed);
        Assert.Equal(12m, commits.Committed!.Balance);

        var next = thread.Run(() => commits.Submit(Charge(1m)));
        Assert.Equal(4, ledger.Writes[2].Commit.ExpectedVersion);
        thread.Run(ledger.Writes[2].Apply);
        Assert.Equal(11m, (await next).Value!.BalanceAfter);
        await blocker;
    }

    [Fact]
    public async Task A_fault_with_writes_queued_reloads_before_deciding_them()
    {
        var commits = NewGroupCommit();
        var x = thread.Run(() => commits.Submit(Charge(1m)));
        var y = thread.Run(() => commits.Submit(Charge(1m)));
        thread.Run(() => ledger.Writes[0].ApplyThenFail(new TimeoutException()));

        await Assert.ThrowsAsync<TimeoutException>(() => x);
        Assert.Equal(1, ledger.Loads);
        Assert.Equal(2, ledger.Writes[1].Commit.ExpectedVersion); // the write that did land is seen
        thread.Run(ledger.Writes[1].Apply);
        Assert.Equal(8m, (await y).Value!.BalanceAfter);
    }

    [Fact]
    public async Task A_version_conflict_reloads_and_decides_again()
    {
        var commits = NewGroupCommit();
        ledger.Stored = ledger.Stored with { Balance = 15m, Version = 2 }; // another activation topped it up

        var charge = thread.Run(() => commits.Submit(Charge(3m)));
        Assert.Equal(1, ledger.Writes[0].Commit.ExpectedVersion);
        thread.Run(ledger.Writes[0].Apply); // refused: the account moved on

        Assert.Equal(1, ledger.Loads);
        Assert.Equal(2, ledger.Writes[1].Commit.ExpectedVersion);
        Assert.Equal(12m, ledger.Writes[1].Commit.Rows.Single().BalanceAfter);
        thread.Run(ledger.Writes[1].Apply);
        Assert.Equal(12m, (await charge).Value!.BalanceAfter);
    }

    [Fact]
    public async Task ReviewDefect_A_conflict_that_persists_fails_as_retryable_unavailable_after_MaxAttempts_not_as_a_500()
    {
        // Nothing was written, so the caller may retry with the same id: the gateway answers BillingUnavailableException
        // with a 503 naming it; it answered the InvalidOperationException thrown before with a 500.
        var commits = NewGroupCommit();
        ledger.Answer = write => write.Conflict();
        var charge = thread.Run(() => commits.Submit(Charge(1m)));

        var fault = await Assert.ThrowsAsync<BillingUnavailableException>(() => charge);
        Assert.Contains("Retry with the same id", fault.Message);
        Assert.Equal(GroupCommit.MaxAttempts, ledger.Writes.Count);
        Assert.Equal(10m, ledger.Stored.Balance);
    }

    [Fact]
    public async Task A_refusal_for_balance_reads_the_stored_version_first_and_decides_again_when_it_moved()
    {
        var commits = NewGroupCommit();
        ledger.Stored = ledger.Stored with { Balance = 20m, Version = 2 }; // another activation topped it up

        var charge = thread.Run(() => commits.Submit(Charge(12m)));

        Assert.Equal(1, ledger.VersionReads);
        Assert.Equal(1, ledger.Loads);
        Assert.Equal(2, ledger.Writes.Single().Commit.ExpectedVersion);
        thread.Run(ledger.Writes[0].Apply);
        Assert.Equal(8m, (await charge).Value!.BalanceAfter);
    }

    [Fact]
    public async Task A_refusal_for_balance_against_the_stored_version_writes_nothing()
    {
        var commits = NewGroupCommit();
        var charge = thread.Run(() => commits.Submit(Charge(12m)));

        Assert.Equal(BillingStatus.InsufficientBalance, (await charge).Problem!.Status);
        Assert.Equal(1, ledger.VersionReads);
        Assert.Equal(0, ledger.Loads);
        Assert.Empty(ledger.Writes);
    }

    [Fact]
    public async Task A_stored_usage_id_is_answered_from_the_database_and_the_rest_decided_again()
    {
        var commits = NewGroupCommit();
        var retried = Guid.NewGuid();
        // Paid before by another account (the project), so this account's statement meets its unique usage id.
        var storedAnswer = BillingResult<UsageReceipt>.Ok(new UsageReceipt(retried, 1m, "USD", 10, 5, PayingAccount.Project, Guid.NewGuid(), 41m, 0m));
        ledger.StoredCharges[retried] = storedAnswer;

        var blocker = thread.Run(() => commits.Submit(Charge(1m)));
        var retry = thread.Run(() => commits.Submit(Charge(1m, retried)));
        var other = thread.Run(() => commits.Submit(Charge(2m)));
        ledger.Answer = write => write.Apply();
        thread.Run(ledger.Writes[0].Apply);

        Assert.Same(storedAnswer, await retry);
        Assert.Equal(7m, (await other).Value!.BalanceAfter);
        Assert.Equal([1, 2, 1], ledger.Writes.Select(w => w.Commit.Rows.Count)); // the unique violation, then the rest
        Assert.Equal(1, ledger.Loads);
        await blocker;
    }

    [Fact]
    public async Task A_full_queue_refuses_at_once_with_Overloaded_and_writes_nothing_of_it()
    {
        var commits = NewGroupCommit(queueLimit: 2);
        var inFlight = thread.Run(() => commits.Submit(Charge(1m)));
        var queued = thread.Run(() => new[] { commits.Submit(Charge(1m)), commits.Submit(Charge(1m)) });

        var refused = thread.Run(() => commits.Submit(Charge(1m)));
        var refusedMarker = thread.Run(() => commits.Submit(Marker()));

        Assert.Equal(BillingStatus.Overloaded, (await refused).Problem!.Status);
        // A marker answers with no value: its refusal is a retryable fault.
        await Assert.ThrowsAsync<BillingUnavailableException>(() => refusedMarker);
        Assert.Equal(2, ledger.Refusals.Count);

        thread.Run(ledger.Writes[0].Apply);
        thread.Run(ledger.Writes[1].Apply);
        Assert.All(await Task.WhenAll(queued), c => Assert.True(c.IsOk));
        Assert.Equal(7m, ledger.Stored.Balance);
        await inFlight;
    }

    [Fact]
    public async Task A_saturated_writer_refuses_the_batch_at_once_with_Overloaded()
    {
        var commits = NewGroupCommit();
        ledger.Answer = write => write.Fail(new LedgerWriterFullException());
        var charge = thread.Run(() => commits.Submit(Charge(1m)));
        var credit = thread.Run(() => commits.Submit(Credit(1m)));

        Assert.Equal(BillingStatus.Overloaded, (await charge).Problem!.Status);
        Assert.Equal(BillingStatus.Overloaded, (await credit).Problem!.Status);
        Assert.Equal(2, ledger.Refusals.Count);
        Assert.Equal(0, ledger.Loads); // nothing was written: the state is still the committed one
    }

    [Fact]
    public async Task ReviewDefect_A_top_up_refused_as_Overloaded_tops_nothing_up_so_it_resolves_no_billing_errors()
    {
        var commits = NewGroupCommit();
        ledger.Answer = write => write.Fail(new LedgerWriterFullException());
        var topUp = new CreditOperation(new AccountCredit(5m, HistoryReasons.TopUp, Guid.NewGuid()));

        var answer = await thread.Run(() => commits.Submit(topUp));

        // Decided as a top-up, then refused unwritten: the grain resolves the account's open errors only after a top-up.
        Assert.Equal(BillingStatus.Overloaded, answer.Problem!.Status);
        Assert.Null(topUp.ToppedUpAt);
        Assert.Equal(10m, ledger.Stored.Balance);
    }

    [Fact]
    public async Task A_duplicate_id_in_flight_shares_the_first_answer()
    {
        var commits = NewGroupCommit();
        var usage = Guid.NewGuid();
        var creditId = Guid.NewGuid();
        var first = thread.Run(() => commits.Submit(Charge(1m, usage)));
        var queuedCredit = thread.Run(() => commits.Submit(Credit(5m, creditId)));

        Assert.Same(first, thread.Run(() => commits.Submit(Charge(1m, usage))));                 // being written
        Assert.Same(queuedCredit, thread.Run(() => commits.Submit(Credit(5m, creditId))));     // queued
        Assert.NotSame(queuedCredit, thread.Run(() => commits.Submit(Credit(5m, null))));      // no id: its own

        thread.Run(ledger.Writes[0].Apply);
        thread.Run(ledger.Writes[1].Apply);
        Assert.Single(ledger.Writes.SelectMany(w => w.Commit.Rows), r => r.UsageId == usage);
        Assert.Single(ledger.Writes.SelectMany(w => w.Commit.Rows), r => r.CreditId == creditId);
        Assert.Equal(9m, (await first).Value!.BalanceAfter);
        Assert.Equal(19m, ledger.Stored.Balance);

        // Once answered, the id is no longer in flight: a later retry is a new request (the grain answers it from
        // its receipts or the database).
        Assert.NotSame(first, thread.Run(() => commits.Submit(Charge(1m, usage))));
    }

    private static AccountState Account(decimal balance, long version)
    {
        var created = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        return new AccountState(Guid.NewGuid(), AccountKind.User, null, balance, "USD", true, false, 0m, 0m, null, null, version, created, created);
    }

    private static ChargeOperation Charge(decimal cost, Guid? usageId = null) =>
        new(new AccountCharge(usageId ?? Guid.NewGuid(), HistoryReasons.AiUsagePersonal, cost, "USD", Model, 10, 5, null));

    private static CreditOperation Credit(decimal amount, Guid? creditId = null) => new(new AccountCredit(amount, HistoryReasons.TopUp, creditId));

    private static UserFallbackOperation Marker() =>
        new(new UsageReceipt(Guid.NewGuid(), 1m, "USD", 10, 5, PayingAccount.User, Guid.NewGuid(), 1m, 0m), Model);

    /// <summary>
    /// The grain's one thread, in miniature: continuations are queued and run one after another, in order, only
    /// inside <see cref="Run{T}"/> — which runs the given step, then everything it set going, until nothing is left.
    /// </summary>
    private sealed class AccountThread : SynchronizationContext
    {
        private readonly Queue<(SendOrPostCallback Callback, object? State)> work = new();

        public override void Post(SendOrPostCallback d, object? state) => work.Enqueue((d, state));

        public override void Send(SendOrPostCallback d, object? state) => throw new NotSupportedException("The account's thread never blocks.");

        public T Run<T>(Func<T> step)
        {
            var previous = Current;
            SetSynchronizationContext(this);
            try
            {
                var result = step();
                while (work.TryDequeue(out var next)) next.Callback(next.State);
                return result;
            }
            finally
            {
                SetSynchronizationContext(previous);
            }
        }

        public void Run(Action step) => Run(() =>
        {
            step();
            return 0;
        });
    }

    /// <summary>
    /// The account's ledger as the group commit sees it, in memory: a write stays in flight until the test applies,
    /// refuses or fails it (or <see cref="Answer"/> does, as soon as it is asked). Applying checks the version and
    /// the stored usage ids as the real statement does.
    /// </summary>
    private sealed class GatedLedger(AccountState stored) : IAccountLedgerPort
    {
        public AccountState Stored { get; set; } = stored;

        public Dictionary<Guid, BillingResult<UsageReceipt>> StoredCharges { get; } = [];

        public List<GatedWrite> Writes { get; } = [];

        /// <summary>When set, answers each new write at once; otherwise writes wait for the test.</summary>
        public Action<GatedWrite>? Answer { get; set; }

        public int Loads { get; private set; }

        public int VersionReads { get; private set; }

        public int CommittedBatches { get; private set; }

        public List<(PendingOperation Operation, BillingProblem Problem)> Refusals { get; } = [];

        public LedgerBatch Open(AccountState committed) => new(committed, committed.UpdatedAt.AddSeconds(1));

        public Task<bool> WriteAsync(LedgerCommit commit)
        {
            var write = new GatedWrite(this, commit);
            Writes.Add(write);
            Answer?.Invoke(write);
            return write.Task;
        }

        public Task<AccountState?> LoadAsync()
        {
            Loads++;
            return Task.FromResult<AccountState?>(Stored);
        }

        public Task<StoredVersion> ReadVersionAsync()
        {
            VersionReads++;
            return Task.FromResult(new StoredVersion(Stored.Version, Stored.HoldsVersion));
        }

        public Task SettleStoredAsync(IReadOnlyList<PendingOperation> operations)
        {
            foreach (var charge in operations.OfType<ChargeOperation>())
            {
                if (StoredCharges.TryGetValue(charge.Charge.UsageId, out var answer)) charge.Settle(answer);
            }

            return Task.CompletedTask;
        }

        public void OnCommitted(LedgerBatch written, IReadOnlyList<PendingOperation> decided)
        {
            CommittedBatches++;
            // Every decided operation is still unanswered here: receipts are remembered before callers hear back.
            Assert.All(decided, o => Assert.False(AnswerOf(o).IsCompleted));
        }

        public void OnRefused(PendingOperation operation, BillingProblem problem) => Refusals.Add((operation, problem));

        private static Task AnswerOf(PendingOperation operation) => operation switch
        {
            ChargeOperation c => c.Task,
            CreditOperation c => c.Task,
            PlanChangeOperation p => p.Task,
            UserFallbackOperation m => m.Task,
            _ => throw new ArgumentOutOfRangeException(nameof(operation)),
        };
    }

    /// <summary>One statement in flight, answered when the test (or <see cref="GatedLedger.Answer"/>) says.</summary>
    private sealed class GatedWrite(GatedLedger ledger, LedgerCommit commit)
    {
        private readonly TaskCompletionSource<bool> outcome = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public LedgerCommit Commit { get; } = commit;

        public Task<bool> Task => outcome.Task;

        /// <summary>Commits it as the database would: only at the expected version, each usage id at most once.</summary>
        public void Apply()
        {
            if (Commit.ExpectedVersion != ledger.Stored.Version)
            {
                Conflict();
                return;
            }

            if (Commit.Charges.Any(c => ledger.StoredCharges.ContainsKey(c.UsageId)))
            {
                Fail(new PostgresException("duplicate key value violates unique constraint", "ERROR", "ERROR", PostgresErrorCodes.UniqueViolation));
                return;
            }

            Store();
            outcome.SetResult(true);
        }

        public void Conflict() => outcome.SetResult(false);

        public void Fail(Exception exception) => outcome.SetException(exception);

        /// <summary>It committed, but the answer was lost on the way back.</summary>
        public void ApplyThenFail(Exception exception)
        {
            Assert.Equal(ledger.Stored.Version, Commit.ExpectedVersion);
            Store();
            Fail(exception);
        }

        private void Store()
        {
            ledger.Stored = Commit.After;
            foreach (var receipt in Commit.Charges) ledger.StoredCharges[receipt.UsageId] = BillingResult<UsageReceipt>.Ok(receipt);
        }
    }
}
