using Billing.Storage;
using Microsoft.Extensions.Logging;

namespace Billing.Accounts;

public sealed class UserGrain(LedgerStore ledger, LedgerWriter writer, UsageRecordStore usageRecords, TimeProvider clock, ILogger<UserGrain> logger)
    : AccountGrain(ledger, writer, usageRecords, clock, logger), IUserGrain
{
    protected override AccountTable Table => AccountTable.Users;

    protected override IReadOnlySet<string> ChargeReasons { get; } = new HashSet<string> { HistoryReasons.AiUsageUserFallback, HistoryReasons.AiUsagePersonal };

    public Task<BillingResult<AccountInitialized>> Initialize() => InitializeOnce(async () =>
    {
        if (State is not null) return BillingResult<AccountInitialized>.Ok(new AccountInitialized(State.ToView(), Created: false));

        var now = Clock.GetDatabaseNow();
        var empty = new AccountState(AccountId, AccountKind.User, null, 0m, AccountLedger.DefaultCurrency, true, false, 0m, 0m, null, null, 0, now, now);
        var signup = AccountLedger.Credit(empty, new AccountCredit(AccountLedger.SignupCredit, HistoryReasons.SignupCredit, null), now,
            CreditGrantOptions.ExpiryOf(GrantOptions.SignupExpiresAfterDays, now)).Row!;
        var account = AccountLedger.Apply(empty, signup);
        var created = await Ledger.CreateAsync(account, signup);
        State = created ? account : await Ledger.LoadAsync(Table, AccountId);
        if (created) logger.LogInformation("User account {UserId} initialised with {SignupCredit} {Currency}", AccountId, AccountLedger.SignupCredit, account.Currency);
        return BillingResult<AccountInitialized>.Ok(new AccountInitialized(State!.ToView(), created));
    });
}
