using Billing.Hosting;
using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Billing.Accounts;

/// <summary>
/// Top-ups (a credit, a grant in effect now) resolve the account's open insufficient-balance errors. Their own write
/// resolves at most <see cref="LedgerCommit.MaxErrorsResolvedPerWrite"/>, so that an account refused many thousands
/// of times in a dry spell does not hold up the accounts that share its transaction; the rest are resolved here, in
/// writes of their own queued behind the account's other operations, before the top-up is answered.
/// </summary>
public abstract partial class AccountGrain
{
    private async Task<T> TopUp<T>(PendingOperation<T> topUp)
    {
        var answer = await Commits.Submit(topUp);
        if (topUp.ToppedUpAt is { } toppedUpAt) await ResolveErrorsLeftBy(toppedUpAt);
        return answer;
    }

    /// <summary>Resolves the errors created by <paramref name="toppedUpAt"/> that the top-up's own write left open.</summary>
    private async Task ResolveErrorsLeftBy(DateTimeOffset toppedUpAt)
    {
        try
        {
            var left = await ServiceProvider.GetRequiredService<BillingErrorStore>().CountOpenInsufficientBalanceAsync(Table.Scope, AccountId, toppedUpAt);
            if (left == 0) return;
            LogResolvingErrorsLeft(logger, left, Table.Kind, AccountId);
            // A fixed number of writes, not "until none is left": errors stored late (refused before the top-up, written
            // after this count) wait for the next top-up rather than keep this one going.
            for (long resolved = 0; resolved < left; resolved += LedgerCommit.MaxErrorsResolvedPerWrite)
            {
                if (!await Commits.Submit(new ResolveErrorsOperation(toppedUpAt))) return;
            }
        }
        catch (Exception exception) when (IsFault(exception))
        {
            // The top-up itself is written and is answered as such; what it left stays open until the next top-up or a
            // resolve by hand.
            LogResolvingErrorsFailed(logger, exception, Table.Kind, AccountId);
        }
    }

    /// <summary>The database or the writer failed (a bug is not one: it reaches the caller, whose retry finds the top-up written).</summary>
    private static bool IsFault(Exception exception) =>
        exception is BillingUnavailableException or BillingOperationFailedException || BillingFaults.Translate(exception) is not null;

    [LoggerMessage(Level = LogLevel.Information, Message = "Resolving the {ErrorCount} open insufficient-balance error(s) a top-up of {AccountKind} account {AccountId} left, in writes of their own")]
    private static partial void LogResolvingErrorsLeft(ILogger logger, long errorCount, AccountKind accountKind, Guid accountId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Resolving the insufficient-balance errors a top-up of {AccountKind} account {AccountId} left failed; they stay open until its next top-up")]
    private static partial void LogResolvingErrorsFailed(ILogger logger, Exception exception, AccountKind accountKind, Guid accountId);
}
