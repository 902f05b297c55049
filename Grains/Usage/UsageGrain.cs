using Billing.Accounts;
using Billing.Diagnostics;
using Billing.Pricing;
using Billing.Storage;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace Billing.Usage;

/// <summary>
/// The agents' entry point. Prices a usage, asks the project to pay, then the user (never splitting a cost), and
/// stores the refusal with its one billing error when neither can. Holds no state: the account grains and the
/// usage record keep every invariant, so any number of these may run on every silo. Reentrant: a stateless
/// worker has at most one activation per core, and without reentrancy each would carry one usage at a time,
/// leaving the account grains nothing to group-commit (figures: docs/performance.md, "Should the account grains of
/// one silo share round trips").
/// </summary>
[StatelessWorker, Reentrant]
public sealed partial class UsageGrain(UsageRecordStore usageRecords, TimeProvider clock, ILogger<UsageGrain> logger) : Grain, IUsageGrain
{
    public async Task<BillingResult<UsageReceipt>> RecordAiUsage(AiUsage usage)
    {
        if (Validate(usage.UsageId, usage.InputTokens, usage.OutputTokens, ("projectId", usage.ProjectId), ("userId", usage.UserId), ("modelId", usage.ModelId)) is { } invalid)
            return Refused(invalid);
        var (priced, problem) = await Price(usage.ModelId, usage.InputTokens, usage.OutputTokens);
        var project = GrainFactory.GetGrain<IProjectGrain>(usage.ProjectId);
        if (problem is not null) return await RefusedUnlessStored(usage.UsageId, problem, project, usage.ModelId);

        var charge = new AccountCharge(usage.UsageId, HistoryReasons.AiUsage, priced.Cost, priced.Currency, usage.ModelId,
            usage.InputTokens, usage.OutputTokens, usage.UserId);
        var byProject = await SiloLossRetry.CallAsync(() => project.Charge(charge));
        if (byProject.IsOk) return await WithFallbackMarker(project, byProject, usage.ModelId);
        // Not found, another currency, or this usage id's refusal stored earlier: that is the answer, unless the id
        // was answered before (a retry).
        if (byProject.Problem!.Status != BillingStatus.InsufficientBalance || byProject.Problem.BillingErrorId is not null)
            return await RefusedUnlessStored(usage.UsageId, byProject.Problem, project, usage.ModelId);

        var byUser = await SiloLossRetry.CallAsync(() => GrainFactory.GetGrain<IUserGrain>(usage.UserId)
            .Charge(charge with { Reason = HistoryReasons.AiUsageUserFallback, CounterpartyId = usage.ProjectId }));
        if (byUser.IsOk) return await WithFallbackMarker(project, byUser, usage.ModelId);
        // Only a user who lacks the money makes this a stored refusal; any other reason (the user's account was never
        // initialised, another currency, this usage id's answer stored earlier) is the answer, and nothing is stored,
        // so the same usage id can succeed once that is put right.
        if (byUser.Problem!.Status != BillingStatus.InsufficientBalance || byUser.Problem.BillingErrorId is not null)
            return await RefusedUnlessStored(usage.UsageId, byUser.Problem, project, usage.ModelId);

        // The error is the project's (its creator sees it): it names the project's amounts and the cost, never the
        // member's personal balance.
        var message = $"{byProject.Problem.Detail} The user's personal account could not cover it.";
        var refused = await Refuse(usage.UsageId, BillingScopes.Project, usage.ProjectId, priced, usage.InputTokens, usage.OutputTokens, message,
            SeedErrorDetails(usage.UserId, usage.ModelId, usage.InputTokens, usage.OutputTokens, priced, personal: false));
        // Charged before after all (a retry): when the user paid, the project's zero-amount row may be what that call did not finish.
        return refused.IsOk ? await WithFallbackMarker(project, refused, usage.ModelId) : refused;
    }

    public async Task<BillingResult<UsageReceipt>> RecordPersonalUsage(PersonalUsage usage)
    {
        if (Validate(usage.UsageId, usage.InputTokens, usage.OutputTokens, ("userId", usage.UserId), ("modelId", usage.ModelId)) is { } invalid)
            return Refused(invalid);
        var (priced, problem) = await Price(usage.ModelId, usage.InputTokens, usage.OutputTokens);
        if (problem is not null) return await RefusedUnlessStored(usage.UsageId, problem);

        var byUser = await SiloLossRetry.CallAsync(() => GrainFactory.GetGrain<IUserGrain>(usage.UserId).Charge(new AccountCharge(
            usage.UsageId, HistoryReasons.AiUsagePersonal, priced.Cost, priced.Currency, usage.ModelId, usage.InputTokens, usage.OutputTokens, null)));
        if (byUser.IsOk) return byUser;
        if (byUser.Problem!.Status != BillingStatus.InsufficientBalance || byUser.Problem.BillingErrorId is not null)
            return await RefusedUnlessStored(usage.UsageId, byUser.Problem);

        return await Refuse(usage.UsageId, BillingScopes.User, usage.UserId, priced, usage.InputTokens, usage.OutputTokens, byUser.Problem.Detail,
            SeedErrorDetails(usage.UserId, usage.ModelId, usage.InputTokens, usage.OutputTokens, priced, personal: true));
    }

    public async Task<BillingResult<BalanceCheckResult>> CheckBalance(BalanceCheck check)
    {
        if (check.ProjectId == Guid.Empty) return BillingResult<BalanceCheckResult>.Fail(BillingStatus.InvalidInput, "projectId must not be the nil UUID.");
        if (Validate(Guid.NewGuid(), check.EstimatedInputTokens, check.EstimatedOutputTokens, ("userId", check.UserId), ("modelId", check.ModelId)) is { } invalid)
            return BillingResult<BalanceCheckResult>.Fail(invalid);
        var (priced, problem) = await Price(check.ModelId, check.EstimatedInputTokens, check.EstimatedOutputTokens);
        if (problem is not null) return BillingResult<BalanceCheckResult>.Fail(problem);

        var now = clock.GetDatabaseNow();
        decimal? projectAvailable = null;
        var projectCanPay = false;
        if (check.ProjectId is { } projectId)
        {
            var project = await GrainFactory.GetGrain<IProjectGrain>(projectId).GetAccount();
            if (!project.IsOk) return BillingResult<BalanceCheckResult>.Fail(project.Problem!);
            projectAvailable = AccountLedger.Available(project.Value!, now);
            // The usage would be refused 422 by the project, never sent to the user: so is its check.
            if (CurrencyMismatch(project.Value!, priced.Currency) is { } mismatch) return BillingResult<BalanceCheckResult>.Fail(mismatch);
            projectCanPay = projectAvailable >= priced.Cost;
        }

        var user = await GrainFactory.GetGrain<IUserGrain>(check.UserId).GetAccount();
        if (!user.IsOk) return BillingResult<BalanceCheckResult>.Fail(user.Problem!);
        var userAvailable = AccountLedger.Available(user.Value!, now);
        // The user's currency matters only when the user would be charged.
        if (!projectCanPay && CurrencyMismatch(user.Value!, priced.Currency) is { } userMismatch) return BillingResult<BalanceCheckResult>.Fail(userMismatch);
        var userCanPay = user.Value!.Currency == priced.Currency && userAvailable >= priced.Cost;

        // One account alone must be able to pay: a deduction is never split (seed defect 1).
        return BillingResult<BalanceCheckResult>.Ok(new BalanceCheckResult(projectCanPay || userCanPay, priced.Cost, priced.Currency, projectAvailable, userAvailable));
    }

    /// <summary>
    /// The details of an insufficient-balance error, with the seed's keys (snake_case, <c>scope</c> only for personal
    /// usage): the table keeps the seed's columns so that its readers keep working (DESIGN.md, Storage), and that
    /// includes what they read out of this column.
    /// </summary>
    private static Dictionary<string, object> SeedErrorDetails(Guid userId, Guid modelId, long inputTokens, long outputTokens, (decimal Cost, string Currency) priced, bool personal)
    {
        var details = new Dictionary<string, object>
        {
            ["user_id"] = userId, ["model_id"] = modelId, ["input_tokens"] = inputTokens, ["output_tokens"] = outputTokens,
            ["cost"] = priced.Cost, ["currency"] = priced.Currency,
        };
        if (personal) details["scope"] = "personal";
        return details;
    }

    /// <summary>The 422 a charge of this account in <paramref name="currency"/> would get (API.md, "Status codes for bad input").</summary>
    private static BillingProblem? CurrencyMismatch(AccountView account, string currency) =>
        string.Equals(account.Currency, currency, StringComparison.Ordinal)
            ? null
            : new BillingProblem(BillingStatus.CurrencyMismatch,
                $"The price is in {currency} but the {account.Kind.ToString().ToLowerInvariant()} account {account.Id} is in {account.Currency}.");

    /// <summary>When the user paid, the project's history gets its zero-amount row (idempotent; done again on a retry).</summary>
    private static async Task<BillingResult<UsageReceipt>> WithFallbackMarker(IProjectGrain project, BillingResult<UsageReceipt> paid, Guid modelId)
    {
        if (paid.Value!.DeductedFrom == PayingAccount.User) await SiloLossRetry.CallAsync(() => project.RecordUserFallback(paid.Value, modelId));
        return paid;
    }

    private async Task<BillingResult<UsageReceipt>> Refuse(
        Guid usageId, string scope, Guid scopeId, (decimal Cost, string Currency) priced, long inputTokens, long outputTokens, string message, object details)
    {
        var now = clock.GetDatabaseNow();
        var events = await Billing.Events.RefusalEvents.ForAsync(GrainFactory, scope, scopeId, now);
        var answer = await usageRecords.RecordRefusalAsync(usageId, scope, scopeId, priced.Cost, priced.Currency, inputTokens, outputTokens,
            message, details, now, events);
        if (answer.IsOk) return answer; // a concurrent attempt with this usage id was charged first
        // Information, not a warning: a refusal is an answer (counted in billing.refusals), and a dry spell has thousands a second.
        logger.LogInformation("Usage {UsageId} refused for insufficient balance ({Scope} {ScopeId}, cost {Cost} {Currency}); billing error {BillingErrorId}",
            usageId, scope, scopeId, priced.Cost, priced.Currency, answer.Problem!.BillingErrorId);
        return Refused(answer.Problem);
    }

    private async Task<((decimal Cost, string Currency) Priced, BillingProblem? Problem)> Price(Guid modelId, long inputTokens, long outputTokens)
    {
        var price = await PriceBook.Of(ServiceProvider).GetPriceAt(modelId, clock.GetDatabaseNow());
        if (price is null || (price.InputPricePerMillion == 0 && price.OutputPricePerMillion == 0))
            return (default, new BillingProblem(BillingStatus.NoPriceInEffect, $"Model {modelId} has no price in effect; configure its pricing first."));
        var cost = UsageCost.TryCompute(inputTokens, outputTokens, price.InputPricePerMillion, price.OutputPricePerMillion);
        if (cost is null)
            return (default, new BillingProblem(BillingStatus.InvalidInput, "Token counts are too large: their cost cannot be represented exactly."));
        return ((cost.Value, price.Currency), null);
    }

    private static BillingProblem? Validate(Guid usageId, long inputTokens, long outputTokens, params (string Name, Guid Value)[] ids)
    {
        if (usageId == Guid.Empty) return new BillingProblem(BillingStatus.InvalidInput, "usageId must not be the nil UUID.");
        foreach (var (name, value) in ids)
        {
            if (value == Guid.Empty) return new BillingProblem(BillingStatus.InvalidInput, $"{name} must be a UUID other than the nil UUID.");
        }

        if (inputTokens < 0 || outputTokens < 0) return new BillingProblem(BillingStatus.InvalidInput, "Token counts must not be negative.");
        return null;
    }

    /// <summary>
    /// A usage refused for anything but a stored refusal or an overload (no price, another currency, an account not
    /// found, …): the accounts remember only their latest receipts, so a retry of a usage id charged or refused before
    /// (a silo lost after the commit, a client's retry of a 503) gets here too when the world moved on in between.
    /// API.md: a repeated usage id returns the first call's result. The read happens on such refusals only.
    /// </summary>
    private async Task<BillingResult<UsageReceipt>> RefusedUnlessStored(Guid usageId, BillingProblem problem, IProjectGrain? project = null, Guid modelId = default)
    {
        if (problem.BillingErrorId is not null || problem.Status == BillingStatus.Overloaded) return Refused(problem);
        if (!(await usageRecords.ReadAsync([usageId])).TryGetValue(usageId, out var stored)) return Refused(problem);
        // Paid by the user for the project: the project's zero-amount row may be the part the first call did not finish.
        return stored.IsOk && project is not null ? await WithFallbackMarker(project, stored, modelId) : stored;
    }

    private static BillingResult<UsageReceipt> Refused(BillingProblem problem)
    {
        BillingMetrics.RecordRefusal(problem.Status);
        return BillingResult<UsageReceipt>.Fail(problem);
    }
}
