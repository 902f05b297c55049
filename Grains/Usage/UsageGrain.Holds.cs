using Billing.Pricing;
using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Billing.Usage;

/// <summary>
/// Holds, for agents: reserve what a call can cost at most, capture what it used, or void it. The payer is chosen
/// once, like a usage's (the project when its available covers the whole amount, else the user, never split), and
/// pinned with the price; the account grains decide and write every change of the hold.
/// </summary>
public sealed partial class UsageGrain
{
    private HoldStore? holdStore;
    private HoldRoutes? holdRoutes;
    private TimeProvider? holdClock;
    private ILogger? holdLogger;

    private HoldStore Holds => holdStore ??= ServiceProvider.GetRequiredService<HoldStore>();

    private HoldRoutes Routes => holdRoutes ??= ServiceProvider.GetRequiredService<HoldRoutes>();

    private TimeProvider HoldClock => holdClock ??= ServiceProvider.GetRequiredService<TimeProvider>();

    private ILogger HoldLogger => holdLogger ??= ServiceProvider.GetRequiredService<ILogger<UsageGrain>>();

    public async Task<BillingResult<HoldView>> PlaceHold(HoldRequest hold) => (await PlaceHoldOnce(hold)).Select(placed => placed.Hold);

    public async Task<BillingResult<HoldPlaced>> PlaceHoldOnce(HoldRequest hold)
    {
        if (ValidateHold(hold) is { } invalid) return HoldRefused<HoldPlaced>(invalid);
        var price = await PriceBook.Of(ServiceProvider).GetPriceAt(hold.ModelId, HoldClock.GetDatabaseNow());
        if (price is null || (price.InputPricePerMillion == 0 && price.OutputPricePerMillion == 0))
            return await RefusedUnlessStored(hold, null, new BillingProblem(BillingStatus.NoPriceInEffect, $"Model {hold.ModelId} has no price in effect; configure its pricing first."));
        if (UsageCost.TryCompute(hold.InputTokens, hold.MaxOutputTokens, price.InputPricePerMillion, price.OutputPricePerMillion) is not { } amount)
            return await RefusedUnlessStored(hold, null, new BillingProblem(BillingStatus.InvalidInput, "Token counts are too large: their cost cannot be represented exactly."));
        var placement = new HoldPlacement(hold, amount, price.Currency, price.InputPricePerMillion, price.OutputPricePerMillion);

        BillingResult<HoldPlaced>? byProject = null;
        if (hold.ProjectId is { } projectId)
        {
            byProject = await SiloLossRetry.CallAsync(() => GrainFactory.GetGrain<IProjectGrain>(projectId).PlaceHoldOnce(placement));
            if (byProject.IsOk) return Placed(byProject);
            if (byProject.Problem!.Status != BillingStatus.InsufficientBalance) return await RefusedUnlessStored(hold, price, byProject.Problem);
            // The hold id's refusal was stored first (the account met it placing the hold): that is the answer.
            if (byProject.Problem.BillingErrorId is not null) return await RefusedAgain(hold, price, byProject.Problem);
        }

        var byUser = await SiloLossRetry.CallAsync(() => GrainFactory.GetGrain<IUserGrain>(hold.UserId).PlaceHoldOnce(placement));
        if (byUser.IsOk) return Placed(byUser);
        if (byUser.Problem!.Status != BillingStatus.InsufficientBalance) return await RefusedUnlessStored(hold, price, byUser.Problem);
        if (byUser.Problem.BillingErrorId is not null) return await RefusedAgain(hold, price, byUser.Problem);

        // Neither account can cover it: the refusal claims the hold id, with one billing error (of the project for a
        // project hold), unless something is stored under the id already: the first stored outcome, a hold or a
        // refusal, answers every copy of the placement. The accounts decide against their active holds only, so a
        // retry whose hold has ended since (captured, voided, expired) is answered here with that hold.
        var (scope, scopeId) = hold.ProjectId is { } project ? (BillingScopes.Project, project) : (BillingScopes.User, hold.UserId);
        var message = byProject is null ? byUser.Problem.Detail : $"{byProject.Problem!.Detail} The user's personal account could not cover it.";
        for (var attempt = 1; ; attempt++)
        {
            // The claim first: it takes the id unless something is stored under it, so the usual refusal costs one
            // statement, not a read and then a statement.
            var now = HoldClock.GetDatabaseNow();
            var errorId = await Holds.ClaimRefusalAsync(placement, scope, scopeId, message,
                new { holdId = hold.HoldId, userId = hold.UserId, modelId = hold.ModelId, inputTokens = hold.InputTokens, maxOutputTokens = hold.MaxOutputTokens, amount, currency = price.Currency },
                now, await Billing.Events.RefusalEvents.ForAsync(GrainFactory, scope, scopeId, now));
            if (errorId is not null)
            {
                var affordable = await MaxAffordableOutputTokens(hold, price);
                HoldLogger.LogInformation("Hold {HoldId} refused for insufficient balance ({Scope} {ScopeId}, amount {Amount} {Currency}); billing error {BillingErrorId}",
                    hold.HoldId, scope, scopeId, amount, price.Currency, errorId);
                return HoldRefused<HoldPlaced>(new BillingProblem(BillingStatus.InsufficientBalance, message, errorId, affordable));
            }

            switch (await Holds.GetClaimAsync(hold.HoldId))
            {
                case { Hold: { } stored }:
                    return Placed(StoredAnswer(stored, hold));
                case { Refusal: { } refused }:
                    return await RefusedAgain(hold, price, refused.ProblemFor(hold));
            }

            // The claim met a row that a committed statement wrote, so the read finds it: this is a safeguard, not a path.
            if (attempt == 3) throw new InvalidOperationException($"Hold {hold.HoldId}: its refusal was neither stored nor found.");
        }
    }

    public async Task<BillingResult<HoldCaptureReceipt>> CaptureHold(HoldCapture capture)
    {
        if (capture.HoldId == Guid.Empty) return HoldRefused<HoldCaptureReceipt>(new BillingProblem(BillingStatus.InvalidInput, "holdId must not be the nil UUID."));
        if (capture.UsageId == Guid.Empty) return HoldRefused<HoldCaptureReceipt>(new BillingProblem(BillingStatus.InvalidInput, "usageId must not be the nil UUID."));
        if (capture.InputTokens < 0 || capture.OutputTokens < 0) return HoldRefused<HoldCaptureReceipt>(new BillingProblem(BillingStatus.InvalidInput, "Token counts must not be negative."));
        if (await RouteOf(capture.HoldId) is not { } hold) return HoldNotFound<HoldCaptureReceipt>(capture.HoldId);

        var captured = await SiloLossRetry.CallAsync(() => Payer(hold).CaptureHold(capture));
        if (captured.IsOk) return await Captured(hold, captured);

        // Anything but a late capture its payer cannot cover now is the answer; so is a stored refusal (it names its billing error).
        if (captured.Problem!.Status != BillingStatus.InsufficientBalance || captured.Problem.BillingErrorId is not null)
            return HoldRefused<HoldCaptureReceipt>(captured.Problem);
        return await RefuseLateCapture(hold, capture, captured.Problem);
    }

    /// <summary>
    /// A late capture the pinned payer cannot cover: its usage id is claimed for the refusal with one billing error, as a
    /// refused usage's is, so that this 402 is the answer of every copy of the capture, even one still on its way to the
    /// payer that would find the money there after a top-up. When the usage id has an answer already (a copy charged or
    /// was refused first, or another usage took it), that answer.
    /// </summary>
    private async Task<BillingResult<HoldCaptureReceipt>> RefuseLateCapture(HoldRoute route, HoldCapture capture, BillingProblem refusal)
    {
        if (await Holds.GetAsync(route.HoldId) is not { } hold) return HoldNotFound<HoldCaptureReceipt>(route.HoldId);
        var usageId = capture.UsageId ?? capture.HoldId;
        var scope = route.Payer == PayingAccount.Project ? BillingScopes.Project : BillingScopes.User;
        var cost = UsageCost.TryCompute(capture.InputTokens, capture.OutputTokens, hold.InputPricePerMillion, hold.OutputPricePerMillion)!.Value;
        var now = HoldClock.GetDatabaseNow();
        var answer = await usageRecords.RecordRefusalAsync(usageId, scope, hold.AccountId, cost, hold.Currency, capture.InputTokens, capture.OutputTokens, refusal.Detail,
            new { holdId = hold.HoldId, usageId, late = true, inputTokens = capture.InputTokens, outputTokens = capture.OutputTokens, modelId = hold.ModelId, cost, currency = hold.Currency },
            now, await Billing.Events.RefusalEvents.ForAsync(GrainFactory, scope, hold.AccountId, now), hold.HoldId);

        if (answer.IsOk)
        {
            // Charged: by a copy of this capture (the payer answers with its receipt), or by another usage (a conflict).
            var again = await SiloLossRetry.CallAsync(() => Payer(route).CaptureHold(capture));
            if (again.IsOk) return await Captured(route, again);
            return again.Problem!.BillingErrorId is not null || again.Problem.Status != BillingStatus.InsufficientBalance
                ? HoldRefused<HoldCaptureReceipt>(again.Problem)
                : UsageIdTaken(capture);
        }

        if (answer.Problem!.BillingErrorId is not { } errorId || !await Holds.IsLateCaptureRefusalAsync(hold.HoldId, errorId)) return UsageIdTaken(capture);
        HoldLogger.LogInformation("Late capture {UsageId} of hold {HoldId} refused for insufficient balance ({Scope} {ScopeId}, cost {Cost} {Currency}); billing error {BillingErrorId}",
            usageId, hold.HoldId, scope, hold.AccountId, cost, hold.Currency, errorId);
        return HoldRefused<HoldCaptureReceipt>(answer.Problem);
    }

    /// <summary>A capture's receipt, after what goes with it: the route is forgotten, and when the user paid for a project, the project's history gets its zero-amount row (as for usage; idempotent).</summary>
    private async Task<BillingResult<HoldCaptureReceipt>> Captured(HoldRoute hold, BillingResult<HoldCaptureReceipt> captured)
    {
        Routes.Forget(hold.HoldId);
        if (hold.ProjectId is { } projectId && hold.Payer == PayingAccount.User)
            await SiloLossRetry.CallAsync(() => GrainFactory.GetGrain<IProjectGrain>(projectId).RecordUserFallback(captured.Value!.ToUsageReceipt(), hold.ModelId));
        return captured;
    }

    private static BillingResult<HoldCaptureReceipt> UsageIdTaken(HoldCapture capture) =>
        HoldRefused<HoldCaptureReceipt>(Accounts.HoldSettling.UsageIdTaken(capture.HoldId, capture.UsageId ?? capture.HoldId));

    public async Task<BillingResult<HoldView>> VoidHold(Guid holdId)
    {
        if (holdId == Guid.Empty) return HoldRefused<HoldView>(new BillingProblem(BillingStatus.InvalidInput, "holdId must not be the nil UUID."));
        if (await RouteOf(holdId) is not { } hold) return HoldNotFound<HoldView>(holdId);
        var voided = await Payer(hold).VoidHold(holdId);
        if (voided.IsOk) Routes.Forget(holdId);
        return Answered(voided);
    }

    public async Task<BillingResult<HoldView>> GetHold(Guid holdId)
    {
        if (holdId == Guid.Empty) return HoldRefused<HoldView>(new BillingProblem(BillingStatus.InvalidInput, "holdId must not be the nil UUID."));
        return await Holds.GetAsync(holdId) is { } hold
            ? BillingResult<HoldView>.Ok(hold.AsSeenAt(HoldClock.GetDatabaseNow()))
            : HoldNotFound<HoldView>(holdId);
    }

    /// <summary>
    /// A placement refused for anything but insufficient balance (no price, an unknown account, another currency, …):
    /// the accounts know only their active holds, so a retry of a hold id placed before (ended since) or refused before
    /// gets here too; that stored outcome is its answer, as on the insufficient-balance path. The read happens on
    /// refusals only. An overload (shed load: no read then) or a conflict (already the stored hold's answer) is the answer.
    /// </summary>
    private async Task<BillingResult<HoldPlaced>> RefusedUnlessStored(HoldRequest hold, ModelPrice? price, BillingProblem problem)
    {
        if (problem.Status is BillingStatus.Overloaded or BillingStatus.HoldConflict) return HoldRefused<HoldPlaced>(problem);
        switch (await Holds.GetClaimAsync(hold.HoldId))
        {
            case { Hold: { } stored }:
                return Placed(StoredAnswer(stored, hold));
            case { Refusal: { } refused }:
                return price is null ? HoldRefused<HoldPlaced>(refused.ProblemFor(hold)) : await RefusedAgain(hold, price, refused.ProblemFor(hold));
            default:
                return HoldRefused<HoldPlaced>(problem);
        }
    }

    /// <summary>The answer of a copy of a placement whose hold is stored: that hold as it is now, or a conflict when its body differs.</summary>
    private BillingResult<HoldPlaced> StoredAnswer(HoldView stored, HoldRequest hold) => stored.SameRequest(hold)
        ? BillingResult<HoldPlaced>.Ok(new HoldPlaced(stored.AsSeenAt(HoldClock.GetDatabaseNow()), Created: false))
        : BillingResult<HoldPlaced>.Fail(BillingStatus.HoldConflict, $"Hold {stored.HoldId} exists with another request; use a new hold id.");

    /// <summary>A copy of a placement whose refusal is stored: that refusal (or a conflict), with how far the caller could go now.</summary>
    private async Task<BillingResult<HoldPlaced>> RefusedAgain(HoldRequest hold, ModelPrice price, BillingProblem stored) =>
        HoldRefused<HoldPlaced>(stored.Status == BillingStatus.InsufficientBalance
            ? stored with { MaxAffordableOutputTokens = await MaxAffordableOutputTokens(hold, price) }
            : stored);

    /// <summary>Who pays the hold: remembered since its placement through this silo, else read from the database.</summary>
    private async ValueTask<HoldRoute?> RouteOf(Guid holdId) =>
        Routes.Find(holdId) ?? (await Holds.GetAsync(holdId) is { } stored ? HoldRoute.Of(stored) : null);

    /// <summary>The answer of a placement; an active hold (placed now, or before for a retry) is remembered for its capture.</summary>
    private BillingResult<HoldPlaced> Placed(BillingResult<HoldPlaced> result)
    {
        if (result.Value?.Hold is { Status: HoldStatus.Active } placed) Routes.Remember(placed);
        return Answered(result);
    }

    private IHoldingAccountGrain Payer(HoldRoute hold) => hold.Payer == PayingAccount.Project
        ? GrainFactory.GetGrain<IProjectGrain>(hold.AccountId)
        : GrainFactory.GetGrain<IUserGrain>(hold.AccountId);

    /// <summary>The largest maxOutputTokens one of the accounts could cover now with these input tokens (0 if none).</summary>
    private async Task<long> MaxAffordableOutputTokens(HoldRequest hold, ModelPrice price)
    {
        var accounts = new List<IAccountGrain>();
        if (hold.ProjectId is { } projectId) accounts.Add(GrainFactory.GetGrain<IProjectGrain>(projectId));
        accounts.Add(GrainFactory.GetGrain<IUserGrain>(hold.UserId));
        var best = 0L;
        foreach (var account in accounts)
        {
            var view = await account.GetAccount();
            if (!view.IsOk || view.Value!.Currency != price.Currency) continue;
            best = Math.Max(best, AffordableOutputTokens(view.Value.Available, hold.InputTokens, price));
        }

        return best;
    }

    /// <summary>The most output tokens whose cost, with the input tokens, is within <paramref name="available"/>.</summary>
    internal static long AffordableOutputTokens(decimal available, long inputTokens, ModelPrice price)
    {
        if (UsageCost.TryCompute(inputTokens, 0, price.InputPricePerMillion, 0m) is not { } inputCost || inputCost > available) return 0;
        if (price.OutputPricePerMillion == 0) return long.MaxValue;
        var tokens = decimal.Floor((available - inputCost) * 1_000_000m / price.OutputPricePerMillion);
        var result = tokens >= long.MaxValue ? long.MaxValue : (long)tokens;
        // Exact check against the cost formula itself (the division above may round in the last place).
        while (result > 0 && (UsageCost.TryCompute(inputTokens, result, price.InputPricePerMillion, price.OutputPricePerMillion) is not { } cost || cost > available)) result--;
        return result;
    }

    private static BillingProblem? ValidateHold(HoldRequest hold)
    {
        if (hold.HoldId == Guid.Empty) return new BillingProblem(BillingStatus.InvalidInput, "holdId must not be the nil UUID.");
        if (hold.UserId == Guid.Empty) return new BillingProblem(BillingStatus.InvalidInput, "userId must be a UUID other than the nil UUID.");
        if (hold.ModelId == Guid.Empty) return new BillingProblem(BillingStatus.InvalidInput, "modelId must be a UUID other than the nil UUID.");
        if (hold.ProjectId == Guid.Empty) return new BillingProblem(BillingStatus.InvalidInput, "projectId must be a UUID other than the nil UUID.");
        if (hold.InputTokens < 0 || hold.MaxOutputTokens < 0) return new BillingProblem(BillingStatus.InvalidInput, "Token counts must not be negative.");
        if (hold.TtlSeconds is < 1 or > HoldRequest.MaxTtlSeconds)
            return new BillingProblem(BillingStatus.InvalidInput, $"ttlSeconds must be between 1 and {HoldRequest.MaxTtlSeconds} (default {HoldRequest.DefaultTtlSeconds}).");
        return null;
    }

    private static BillingResult<T> Answered<T>(BillingResult<T> result) where T : class =>
        result.Problem is { } problem ? HoldRefused<T>(problem) : result;

    private static BillingResult<T> HoldNotFound<T>(Guid holdId) where T : class =>
        HoldRefused<T>(new BillingProblem(BillingStatus.HoldNotFound, $"Hold {holdId} was not found."));

    private static BillingResult<T> HoldRefused<T>(BillingProblem problem) where T : class
    {
        Diagnostics.BillingMetrics.RecordRefusal(problem.Status);
        return BillingResult<T>.Fail(problem);
    }
}
