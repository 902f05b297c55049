using Billing.Storage;
using Microsoft.Extensions.Logging;

namespace Billing.Accounts;

public sealed class ProjectGrain(LedgerStore ledger, LedgerWriter writer, UsageRecordStore usageRecords, TimeProvider clock, ILogger<ProjectGrain> logger)
    : AccountGrain(ledger, writer, usageRecords, clock, logger), IProjectGrain
{
    protected override AccountTable Table => AccountTable.Projects;

    public Task<BillingResult<AccountInitialized>> Initialize(Guid creatorId) => InitializeOnce(async () =>
    {
        if (creatorId == Guid.Empty) return Invalid<AccountInitialized>("creatorId must be a UUID other than the nil UUID.");
        if (State is null)
        {
            // The creator's grain decides, once and for all, which project takes the first-project credit.
            var first = await GrainFactory.GetGrain<ICreatorGrain>(creatorId).ClaimFirstProjectCredit(AccountId);
            var now = Clock.GetDatabaseNow();
            var empty = new AccountState(AccountId, AccountKind.Project, creatorId, 0m, AccountLedger.DefaultCurrency, first, false, 0m, 0m, null, null, 0, now, now);
            var credit = first
                ? AccountLedger.Credit(empty, new AccountCredit(AccountLedger.FirstProjectCredit, HistoryReasons.FirstProjectCredit, null), now).Row! with { CounterpartyId = creatorId }
                : null;
            var account = credit is null ? empty : AccountLedger.Apply(empty, credit);
            if (await Ledger.CreateAsync(account, credit))
            {
                State = account;
                logger.LogInformation("Project account {ProjectId} of creator {CreatorId} initialised with {Balance} {Currency} (first project: {IsFirstProject})",
                    AccountId, creatorId, account.Balance, account.Currency, first);
                return BillingResult<AccountInitialized>.Ok(new AccountInitialized(account.ToView(), Created: true));
            }

            State = await Ledger.LoadAsync(Table, AccountId);
        }

        return State!.CreatorId == creatorId
            ? BillingResult<AccountInitialized>.Ok(new AccountInitialized(State.ToView(), Created: false))
            : BillingResult<AccountInitialized>.Fail(BillingStatus.CreatorConflict,
                $"Project {AccountId} was initialised for another creator.");
    });

    public Task RecordUserFallback(UsageReceipt userReceipt, Guid modelId) => RecordFallbackMarker(userReceipt, modelId);

    protected override IReadOnlySet<string> ChargeReasons { get; } = new HashSet<string> { HistoryReasons.AiUsage };
}
