using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Billing.Accounts;

/// <summary>
/// Holds of this account (the payer). Every change of a hold is an operation of the account's group commit, decided
/// in arrival order against the account's available and written by its one ledger statement per batch (H3). While the
/// account has active holds, its silo's <see cref="HoldExpiryQueue"/> calls it to record their expiry soon after it (H2);
/// <see cref="HoldExpiryScanner"/> does it for accounts that are not active anywhere (their silo failed).
/// </summary>
public abstract partial class AccountGrain
{
    /// <summary>Reads of a stored hold that an operation may need before it gives up (other holds kept changing meanwhile).</summary>
    private const int MaxStoredReads = 8;

    private Task<int>? expiring;
    private HoldStore? holdStore;
    private HoldExpiryQueue? expiryQueue;

    private ILogger? holdLogger;

    private HoldStore HoldStore => holdStore ??= ServiceProvider.GetRequiredService<HoldStore>();

    private HoldExpiryQueue ExpiryQueue => expiryQueue ??= ServiceProvider.GetRequiredService<HoldExpiryQueue>();

    private ILogger HoldLogger => holdLogger ??= ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger(GetType());

    public async Task<BillingResult<HoldView>> PlaceHold(HoldPlacement placement) => (await PlaceHoldOnce(placement)).Select(placed => placed.Hold);

    public async Task<BillingResult<HoldPlaced>> PlaceHoldOnce(HoldPlacement placement)
    {
        if (ValidatePlacement(placement) is { } invalid) return Invalid<HoldPlaced>(invalid);
        await Commits.ReloadIfNeeded();
        if (State is null) return NotFound<HoldPlaced>();
        var result = await Commits.Submit(new PlaceHoldOperation(placement));
        if (result.Value?.Hold is { Status: HoldStatus.Active } hold) ExpiryQueue.Expect(Table.Kind, AccountId, hold.ExpiresAt);
        return result;
    }

    public async Task<BillingResult<HoldCaptureReceipt>> CaptureHold(HoldCapture capture)
    {
        if (capture.HoldId == Guid.Empty || capture.UsageId == Guid.Empty) return Invalid<HoldCaptureReceipt>("holdId and usageId must not be the nil UUID.");
        if (capture.InputTokens < 0 || capture.OutputTokens < 0) return Invalid<HoldCaptureReceipt>("Token counts must not be negative.");
        var result = await WithStoredHold<HoldCaptureReceipt>(capture.HoldId, (stored, at) => new CaptureHoldOperation(capture, stored, at));
        ForgetExpiryWhenNoHolds();
        return result;
    }

    public async Task<BillingResult<HoldView>> VoidHold(Guid holdId)
    {
        if (holdId == Guid.Empty) return Invalid<HoldView>("holdId must not be the nil UUID.");
        var result = await WithStoredHold<HoldView>(holdId, (stored, at) => new VoidHoldOperation(holdId, stored, at));
        ForgetExpiryWhenNoHolds();
        return result;
    }

    public async Task<int> ExpireDueHolds()
    {
        await Commits.ReloadIfNeeded();
        var now = Clock.GetDatabaseNow();
        if (!HasExpiredHolds(now))
        {
            // Called for a hold memory does not have as due: the scan found it due in the database, so another
            // activation may have placed it (a placement moves holds_seq only). Without this check the scan would
            // call again every round and the hold would never be recorded expired.
            await Commits.ReloadIfChangedElsewhere();
            now = Clock.GetDatabaseNow();
        }

        if (!HasExpiredHolds(now))
        {
            ExpectEarliestExpiry();
            return 0;
        }

        // One expiry in flight at a time: the queue, the scan and callers share it.
        if (expiring is { IsCompleted: false }) return await expiring;
        expiring = ExpireInWrites();
        var expired = await expiring;
        if (expired > 0) LogHoldsExpired(HoldLogger, expired, Table.Kind, AccountId);
        ExpectEarliestExpiry();
        return expired;
    }

    /// <summary>Records every due expiry, at most <see cref="ExpireHoldsOperation.MaxPerWrite"/> per write, each write queued behind the account's other operations.</summary>
    private async Task<int> ExpireInWrites()
    {
        var total = 0;
        while (true)
        {
            var expired = await Commits.Submit(new ExpireHoldsOperation());
            total += expired;
            if (expired < ExpireHoldsOperation.MaxPerWrite || !HasExpiredHolds(Clock.GetDatabaseNow())) return total;
        }
    }

    /// <summary>Whether an active hold of the account is past its expiry at <paramref name="now"/> (its expiry not yet recorded).</summary>
    private bool HasExpiredHolds(DateTimeOffset now) => State?.Holds.FirstExpiry <= now;

    public async Task<BillingResult<HoldPage>> ListHolds(HoldQuery query)
    {
        if (query.Limit is < 1 or > 500) return Invalid<HoldPage>("limit must be between 1 and 500.");
        if (query.Before is < 1) return Invalid<HoldPage>("cursor is not valid.");
        if (State is null) return NotFound<HoldPage>();
        return BillingResult<HoldPage>.Ok(await HoldStore.ListAsync(AccountId, query, Clock.GetDatabaseNow()));
    }

    /// <summary>
    /// Submits an operation on a hold: an active hold is decided from memory; any other is read from the database
    /// first, and read again when other holds changed before the operation was decided.
    /// </summary>
    private async Task<BillingResult<T>> WithStoredHold<T>(Guid holdId, Func<HoldView?, long, StoredHoldOperation<T>> operation) where T : class
    {
        for (var read = 0; read < MaxStoredReads; read++)
        {
            await Commits.ReloadIfNeeded();
            if (State is null) return NotFound<T>();
            var at = State.HoldsVersion;
            HoldView? stored = null;
            if (!State.Holds.Contains(holdId))
            {
                stored = await HoldStore.GetAsync(holdId);
                if (stored is null || stored.AccountId != AccountId) return BillingResult<T>.Fail(BillingStatus.HoldNotFound, $"Hold {holdId} was not found on the {Table.Scope} account {AccountId}.");
            }

            var submitted = operation(stored, at);
            var result = await Commits.Submit(submitted);
            if (!submitted.NeedsStored) return result;
        }

        throw new BillingUnavailableException($"Hold {holdId}: the account's holds kept changing; retry.");
    }

    private string? ValidatePlacement(HoldPlacement placement)
    {
        var request = placement.Request;
        if (request.HoldId == Guid.Empty) return "holdId must not be the nil UUID.";
        if (request.UserId == Guid.Empty || request.ModelId == Guid.Empty || request.ProjectId == Guid.Empty) return "userId, modelId and projectId must not be the nil UUID.";
        if (request.InputTokens < 0 || request.MaxOutputTokens < 0) return "Token counts must not be negative.";
        if (request.TtlSeconds is < 1 or > HoldRequest.MaxTtlSeconds) return $"ttlSeconds must be between 1 and {HoldRequest.MaxTtlSeconds}.";
        if (placement.Amount < 0 || placement.InputPricePerMillion < 0 || placement.OutputPricePerMillion < 0) return "amount and prices must not be negative.";
        if (placement.Currency is null || placement.Currency.Length != 3) return "currency must be a three-letter ISO 4217 code.";
        // The payer is this account: a project pays only its own holds, a user its own or its projects'.
        if (Table.Kind == AccountKind.Project ? request.ProjectId != AccountId : request.UserId != AccountId) return $"This hold is not payable by the {Table.Scope} account {AccountId}.";
        return null;
    }

    /// <summary>Puts the account in its silo's expiry queue at its earliest active hold's expiry, or out of it when it has none.</summary>
    private void ExpectEarliestExpiry()
    {
        if (State?.Holds.FirstExpiry is { } first) ExpiryQueue.ExpectExactly(Table.Kind, AccountId, first);
        else ForgetExpiryWhenNoHolds();
    }

    /// <summary>
    /// After a capture or a void: an account left with no active hold leaves the queue. One with others keeps its entry,
    /// which may now be early; when it fires, <see cref="ExpireDueHolds"/> moves it to the next expiry.
    /// </summary>
    private void ForgetExpiryWhenNoHolds()
    {
        if (State is null || State.Holds.IsEmpty) ExpiryQueue.Forget(Table.Kind, AccountId);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Recorded the expiry of {HoldCount} hold(s) of {AccountKind} account {AccountId}")]
    private static partial void LogHoldsExpired(ILogger logger, int holdCount, AccountKind accountKind, Guid accountId);
}
