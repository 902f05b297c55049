using Billing.Diagnostics;
using Billing.Storage;

namespace Billing.Accounts;

/// <summary>
/// One account's ledger in PostgreSQL, as its <see cref="GroupCommit"/> writes it: batches go through the silo's
/// shared <see cref="LedgerWriter"/>, reads and reloads through <see cref="LedgerStore"/>.
/// </summary>
internal sealed class StoredAccountLedger(
    AccountTable table, Guid accountId, LedgerStore ledger, LedgerWriter writer, UsageRecordStore usageRecords,
    TimeProvider clock, RecentReceipts recentReceipts, HoldStore holds, Billing.Events.AccountEvents? events = null) : IAccountLedgerPort
{
    public LedgerBatch Open(AccountState committed)
    {
        // The silo's clock, but never before the account's newest row, so a silo whose clock is behind cannot write
        // history that goes back in time after a fail-over.
        var now = clock.GetDatabaseNow();
        if (committed.UpdatedAt > now) now = committed.UpdatedAt;
        var batch = new LedgerBatch(committed, now);
        events?.Begin(batch);
        if (AccountLedger.CycleReset(batch.State, now) is { } reset) batch.Append(reset, AccountLedger.ApplyCycleReset);
        events?.OnDecided(batch); // after the cycle reset
        // Grants that came into effect or expired since the last write; alerts judge each of their rows.
        CreditGrants.AppendDue(batch, events is null ? null : new Action<LedgerBatch>(events.OnDecided));
        return batch;
    }

    public Task<bool> WriteAsync(LedgerCommit commit) => writer.CommitAsync(commit);

    public async Task<AccountState?> LoadAsync()
    {
        if (events is not null) await events.ReloadAsync();
        return await HoldLoading.LoadAsync(ledger, holds, table, accountId);
    }

    public void OnDecided(LedgerBatch batch) => events?.OnDecided(batch);

    public Task<StoredVersion> ReadVersionAsync() => ledger.ReadVersionAsync(table, accountId);

    public async Task SettleStoredAsync(IReadOnlyList<PendingOperation> operations)
    {
        var charges = operations.OfType<ChargeOperation>().ToList();
        var stored = await usageRecords.ReadAsync(charges.Select(c => c.Charge.UsageId).ToArray());
        foreach (var charge in charges)
        {
            if (stored.TryGetValue(charge.Charge.UsageId, out var answer)) charge.Settle(answer);
        }

        var markers = operations.OfType<UserFallbackOperation>().ToList();
        var markedUsages = await ledger.ExistingUsageIdsAsync(table, accountId, markers.Select(m => m.UsageId).ToArray());
        foreach (var marker in markers.Where(m => markedUsages.Contains(m.UsageId))) marker.Settle();

        // Top-ups and grants share the history's credit ids (a grant given in effect names its grant id there): an id
        // that a row of the other kind holds is a conflict, not this request applied before.
        var credits = operations.OfType<CreditOperation>().Where(c => c.Credit.CreditId is not null).ToList();
        var grants = operations.OfType<GrantOperation>().ToList();
        var reasons = await ledger.CreditIdReasonsAsync(table, accountId,
            credits.Select(c => c.Credit.CreditId!.Value).Concat(grants.Select(g => g.Input.GrantId)).Distinct().ToArray());
        foreach (var credit in credits)
        {
            if (!reasons.TryGetValue(credit.Credit.CreditId!.Value, out var reason)) continue;
            if (reason == GrantReasons.GrantCredit) credit.SettleRefused(CreditOperation.GrantsIdTaken(credit.Credit.CreditId!.Value));
            else credit.Settle();
        }

        await HoldSettling.SettleAsync(holds, usageRecords, clock, operations);
        await GrantOperation.SettleStoredAsync(operations, ledger.Grants, table, accountId);
        foreach (var grant in grants.Where(g => !g.Settled && reasons.TryGetValue(g.Input.GrantId, out var reason) && reason != GrantReasons.GrantCredit))
        {
            grant.Settle(BillingResult<GrantIssued>.Fail(CreditOperation.TopUpsIdTaken(grant.Input.GrantId)));
        }
    }

    public void OnCommitted(LedgerBatch written, IReadOnlyList<PendingOperation> decided)
    {
        BillingMetrics.RecordBatch(written.Rows.Count);
        events?.OnCommitted(written);
        foreach (var operation in decided)
        {
            switch (operation)
            {
                case ChargeOperation { Receipt: { } receipt } charge:
                    recentReceipts.Remember(receipt);
                    BillingMetrics.RecordCharge(table.Scope, charge.Charge.Cost, charge.Charge.Currency);
                    BillingMetrics.RecordDeduction(charge.StartTimestamp);
                    break;
                case CaptureHoldOperation { Receipt: { } captured } capture:
                    // A capture is a usage charged too (what the balance paid of it; a shortfall is not charged).
                    BillingMetrics.RecordCharge(table.Scope, captured.Charged, captured.Currency);
                    BillingMetrics.RecordDeduction(capture.StartTimestamp);
                    break;
            }
        }
    }

    // Charges are counted by IUsageGrain, which answers their refusals (this one among them).
    public void OnRefused(PendingOperation operation, BillingProblem problem)
    {
        if (operation is not ChargeOperation) BillingMetrics.RecordRefusal(problem.Status);
    }
}
