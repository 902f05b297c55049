using Billing.Accounts;
using Billing.Storage;
using Npgsql;

namespace Billing.Bench.Workload;

/// <summary>
/// Project accounts held in memory as their grains hold them, charged with the grains' own decision
/// (<see cref="AccountLedger.Charge"/>) and written with the grains' own statement (<see cref="LedgerStatements.Commit"/>,
/// alone through <see cref="LedgerStore.CommitAsync"/> or beside other accounts' through <see cref="SharedCommitter"/>):
/// the DB-only experiments measure the real ledger write without Orleans. One write in flight per account, as in a
/// grain, so each write's version guard holds.
/// </summary>
public sealed class LedgerAccounts(NpgsqlDataSource db)
{
    private readonly Dictionary<Guid, Account> accounts = [];

    /// <summary>The statement on the tables <c>db</c> reaches (its search path picks them).</summary>
    public LedgerStore Store { get; } = new(db);

    public Guid[] Ids { get; private set; } = [];

    /// <summary>Creates the accounts (the grains' creation statement) with an opening top-up of <paramref name="balance"/>.</summary>
    public async Task CreateAsync(IReadOnlyList<(Guid Project, Guid Creator)> projects, decimal balance)
    {
        var now = DateTimeOffset.UtcNow;
        await Parallel.ForEachAsync(projects, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (project, _) =>
        {
            var empty = new AccountState(project.Project, AccountKind.Project, project.Creator, 0m, AccountLedger.DefaultCurrency, false, false, 0m, 0m, null, null, 0, now, now);
            var (row, problem) = AccountLedger.Credit(empty, new AccountCredit(balance, HistoryReasons.TopUp, Guid.NewGuid()), now);
            if (problem is not null) throw new InvalidOperationException(problem.Detail);
            var state = AccountLedger.Apply(empty, row!);
            if (!await Store.CreateAsync(state, row)) throw new InvalidOperationException($"account {project.Project} exists");
            lock (accounts) accounts[project.Project] = new Account(state);
        });
        Ids = projects.Select(p => p.Project).ToArray();
    }

    /// <summary>One usage of <see cref="BenchUsage"/>, decided in memory and written by <paramref name="commit"/> (false: version conflict).</summary>
    public async Task<Outcome> ChargeAsync(Guid id, Guid modelId, Func<LedgerCommit, Task<bool>> commit)
    {
        var account = accounts[id];
        await account.Gate.WaitAsync();
        try
        {
            var state = account.State;
            var now = DateTimeOffset.UtcNow;
            var usageId = Guid.NewGuid();
            var charge = new AccountCharge(usageId, HistoryReasons.AiUsage, BenchUsage.Cost, "USD", modelId, BenchUsage.InputTokens, BenchUsage.OutputTokens, null);
            var (row, problem) = AccountLedger.Charge(state, charge, now);
            if (problem is not null) return Outcome.Refused(problem.Detail);
            var after = AccountLedger.Apply(state, row!);
            var receipt = new UsageReceipt(usageId, BenchUsage.Cost, "USD", BenchUsage.InputTokens, BenchUsage.OutputTokens, PayingAccount.Project, id,
                after.Balance, row!.QuotaUsed);
            if (!await commit(new LedgerCommit(after, state.Version, [row], [receipt], false))) return Outcome.Fault("version conflict");
            account.State = after;
            return Outcome.Ok(BenchUsage.Cost);
        }
        finally
        {
            account.Gate.Release();
        }
    }

    private sealed class Account(AccountState state)
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public AccountState State { get; set; } = state;
    }
}
