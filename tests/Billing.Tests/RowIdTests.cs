using Billing.Accounts;
using Billing.Storage;

namespace Billing.Tests;

/// <summary>The rows the ledger appends get time-ordered ids, so their primary-key indexes grow at the right edge.</summary>
public sealed class RowIdTests
{
    [Fact]
    public async Task Appended_rows_get_version_7_ids_that_sort_in_the_order_they_were_made()
    {
        var created = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var account = new AccountState(Guid.NewGuid(), AccountKind.User, null, 0m, "USD", true, false, 0m, 0m, null, null, 0, created, created);
        var (first, _) = AccountLedger.Credit(account, new AccountCredit(5m, HistoryReasons.TopUp, null), created);
        await Task.Delay(5);
        var (second, _) = AccountLedger.Credit(AccountLedger.Apply(account, first!), new AccountCredit(5m, HistoryReasons.TopUp, null), created);

        Assert.Equal(7, first!.Id.Version);
        Assert.Equal(7, second!.Id.Version);
        // PostgreSQL orders uuids by their bytes, which is the order of their text.
        Assert.True(string.CompareOrdinal(first.Id.ToString(), second.Id.ToString()) < 0);
        Assert.Equal(7, RowIds.New().Version);
    }
}
