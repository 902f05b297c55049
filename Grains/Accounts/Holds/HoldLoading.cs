using Billing.Storage;

namespace Billing.Accounts;

/// <summary>An account with its active holds, consistent: the holds are read at the version the account was loaded at.</summary>
internal static class HoldLoading
{
    private const int MaxAttempts = 5;

    public static async Task<AccountState?> LoadAsync(LedgerStore ledger, HoldStore holds, AccountTable table, Guid accountId, CancellationToken cancellationToken = default)
    {
        for (var attempt = 1; ; attempt++)
        {
            var account = await ledger.LoadAsync(table, accountId, cancellationToken);
            if (account is null) return null;
            // Holds change without moving the version, but balance and quota only move with it: the holds (and their
            // version) read later, while the version is unchanged, belong with this account.
            if (await holds.LoadActiveAsync(table, accountId, cancellationToken) is { } active && active.Version == account.Version)
                return account with { Holds = active.Holds, HoldsVersion = active.HoldsVersion };
            if (attempt >= MaxAttempts) throw new BillingUnavailableException($"{table.Kind} account {accountId} kept changing while its holds were read; nothing was done. Retry with the same id.");
        }
    }
}
