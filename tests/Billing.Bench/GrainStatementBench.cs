using Billing.Accounts;
using Billing.Storage;
using Npgsql;

namespace Billing.Bench;

/// <summary>
/// db-grain: the account grains' own write (<see cref="LedgerStore.CommitAsync"/>, the real statement on the real
/// tables), one usage per statement, without Orleans — what PostgreSQL pays per SPREAD usage, and how much a cheaper
/// statement or prepared statements would save. Its accounts are its own (never touched by the grains).
/// </summary>
public sealed class GrainStatementBench(NpgsqlDataSource db)
{
    private readonly LedgerStore ledger = new(db);
    private readonly Dictionary<Guid, (SemaphoreSlim Gate, AccountState[] State)> accounts = [];

    public Guid[] Ids { get; private set; } = [];

    public async Task CreateAccountsAsync(int count, decimal balance)
    {
        var now = DateTimeOffset.UtcNow;
        var ids = Enumerable.Range(0, count).Select(_ => Guid.NewGuid()).ToArray();
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (id, _) =>
        {
            var empty = new AccountState(id, AccountKind.Project, Guid.NewGuid(), 0m, AccountLedger.DefaultCurrency, false, false, 0m, 0m, null, null, 0, now, now);
            var (row, problem) = AccountLedger.Credit(empty, new AccountCredit(balance, HistoryReasons.TopUp, Guid.NewGuid()), now);
            if (problem is not null) throw new InvalidOperationException(problem.Detail);
            var state = AccountLedger.Apply(empty, row!);
            if (!await ledger.CreateAsync(state, row)) throw new InvalidOperationException("account exists");
            lock (accounts) accounts[id] = (new SemaphoreSlim(1, 1), [state]);
        });
        Ids = ids;
    }

    public async Task<Outcome> ChargeAsync(Guid id, Guid modelId)
    {
        var (gate, holder) = accounts[id];
        await gate.WaitAsync();
        try
        {
            var state = holder[0];
            var now = DateTimeOffset.UtcNow;
            var usageId = Guid.NewGuid();
            var charge = new AccountCharge(usageId, HistoryReasons.AiUsage, Database.Cost, "USD", modelId, Database.InputTokens, Database.OutputTokens, null);
            var (row, problem) = AccountLedger.Charge(state, charge, now);
            if (problem is not null) return Outcome.Refused(problem.Detail);
            var after = AccountLedger.Apply(state, row!);
            var receipt = new UsageReceipt(usageId, Database.Cost, "USD", Database.InputTokens, Database.OutputTokens, PayingAccount.Project, id,
                after.Balance, row!.QuotaUsed);
            if (!await ledger.CommitAsync(new LedgerCommit(after, state.Version, [row], [receipt], false))) return Outcome.Fault("version conflict");
            holder[0] = after;
            return Outcome.Ok(Database.Cost);
        }
        finally
        {
            gate.Release();
        }
    }
}
