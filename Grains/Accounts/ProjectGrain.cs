using Billing.Storage;
using Microsoft.Extensions.Logging;
using Npgsql;

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
            // Whether this project takes the creator's one first-project credit is decided by the statement that
            // creates the account (LedgerStore.CreateProjectAsync): a creation that fails claims nothing.
            var now = Clock.GetDatabaseNow();
            var empty = new AccountState(AccountId, AccountKind.Project, creatorId, 0m, AccountLedger.DefaultCurrency, false, false, 0m, 0m, null, null, 0, now, now);
            var granted = empty with { InitialCreditGranted = true };
            var credit = AccountLedger.Credit(granted, new AccountCredit(AccountLedger.FirstProjectCredit, HistoryReasons.FirstProjectCredit, null), now,
                    CreditGrantOptions.ExpiryOf(GrantOptions.FirstProjectExpiresAfterDays, now)).Row!
                with { CounterpartyId = creatorId };
            try
            {
                var (created, first) = await Ledger.CreateProjectAsync(empty, credit);
                if (created)
                {
                    var account = first ? AccountLedger.Apply(granted, credit) : empty;
                    State = account;
                    logger.LogInformation("Project account {ProjectId} of creator {CreatorId} initialised with {Balance} {Currency} (first project: {IsFirstProject})",
                        AccountId, creatorId, account.Balance, account.Currency, first);
                    return BillingResult<AccountInitialized>.Ok(new AccountInitialized(account.ToView(), Created: true));
                }
            }
            catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.ForeignKeyViolation && exception.TableName == "first_project_credit")
            {
                // Another activation created this project for another creator at the same moment: nothing was written.
                logger.LogWarning("Project account {ProjectId} was created concurrently by another activation; reloading", AccountId);
            }

            State = await Ledger.LoadAsync(Table, AccountId)
                ?? throw new InvalidOperationException($"Project account {AccountId} was neither created nor found.");
        }

        return State!.CreatorId == creatorId
            ? BillingResult<AccountInitialized>.Ok(new AccountInitialized(State.ToView(), Created: false))
            : BillingResult<AccountInitialized>.Fail(BillingStatus.CreatorConflict,
                $"Project {AccountId} was initialised for another creator.");
    });

    public Task RecordUserFallback(UsageReceipt userReceipt, Guid modelId) => RecordFallbackMarker(userReceipt, modelId);

    protected override IReadOnlySet<string> ChargeReasons { get; } = new HashSet<string> { HistoryReasons.AiUsage };
}
