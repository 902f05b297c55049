using System.Text.RegularExpressions;
using Orleans.Concurrency;
using Billing.Diagnostics;
using Billing.Hosting;
using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Billing.Accounts;

/// <summary>
/// One account, one activation: the only writer of its rows. Requests are reentrant; the grain validates them and
/// hands every write to its <see cref="GroupCommit"/>, which decides them synchronously on the grain's single thread,
/// in arrival order, commits them together while the previous write is in flight, and answers each caller only after
/// the statement holding its row has committed.
/// <para>
/// It trusts no caller: money-moving calls validate their input here and come only from the billing grains
/// (charges) or from them and the gateway (credits, plan changes, initialisation); see <see cref="Invoke"/>.
/// </para>
/// </summary>
[Reentrant]
public abstract partial class AccountGrain(LedgerStore ledger, LedgerWriter writer, UsageRecordStore usageRecords, TimeProvider clock, ILogger logger)
    : Grain, IAccountGrain, IIncomingGrainCallFilter
{
    /// <summary>
    /// Receipts kept for fast answers to retries (an older usage id is answered from usage_record, at the cost of
    /// one failed batch statement). Small, since 10,000 active accounts keep this many each: 32 is ≈ 5 KB an account.
    /// </summary>
    private const int RecentReceiptsKept = 32;

    private readonly RecentReceipts recentReceipts = new(RecentReceiptsKept);
    private readonly SemaphoreSlim initialization = new(1, 1);
    private GroupCommit? commits;
    private BillingCallers? callers;

    protected abstract AccountTable Table { get; }

    /// <summary>The reasons a charge of this kind of account may carry.</summary>
    protected abstract IReadOnlySet<string> ChargeReasons { get; }

    /// <summary>The committed account; null when it was never initialised.</summary>
    protected AccountState? State
    {
        get => Commits.Committed;
        set => Commits.Committed = value;
    }

    protected Guid AccountId => this.GetPrimaryKey();

    protected TimeProvider Clock => clock;

    protected LedgerStore Ledger => ledger;

    // Built on first use rather than by the constructor, so the account grains' constructors stay as they are.
    private GroupCommit Commits => commits ??= new GroupCommit(
        new StoredAccountLedger(Table, AccountId, ledger, writer, usageRecords, clock, recentReceipts, HoldStore, Events),
        Table, AccountId, ServiceProvider.GetRequiredService<IOptions<BillingLimits>>().Value.AccountQueue, logger);

    private BillingCallers Callers => callers ??= ServiceProvider.GetRequiredService<BillingCallers>();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        try
        {
            State = await HoldLoading.LoadAsync(ledger, HoldStore, Table, AccountId, cancellationToken);
            await Events.ReloadAsync(cancellationToken);
            ExpectEarliestExpiry();
        }
        catch (Exception exception) when (BillingFaults.Translate(exception) is { } fault)
        {
            // An activation's fault reaches the caller without passing the grain call filter: translate it here.
            LogActivationFailed(logger, exception, Table.Kind, AccountId);
            throw fault;
        }
    }

    public async Task<BillingResult<AccountView>> GetAccount()
    {
        // After a write of unknown outcome the database, not the last state seen, is the answer.
        await Commits.ReloadIfNeeded();
        await ApplyDueGrants(); // a grant that lapsed or came into effect is written before it is shown
        return State is null ? NotFound<AccountView>() : BillingResult<AccountView>.Ok(State.ToView(clock.GetDatabaseNow()));
    }

    public async Task<BillingResult<HistoryPage>> GetHistory(HistoryQuery query)
    {
        if (query.Limit is < 1 or > 500) return BillingResult<HistoryPage>.Fail(BillingStatus.InvalidInput, "limit must be between 1 and 500.");
        if (query.Before is < 1) return BillingResult<HistoryPage>.Fail(BillingStatus.InvalidInput, "cursor is not valid.");
        if (State is null) return NotFound<HistoryPage>();
        return BillingResult<HistoryPage>.Ok(await ledger.ReadHistoryAsync(Table, AccountId, query));
    }

    public Task<BillingResult<UsageReceipt>> Charge(AccountCharge charge)
    {
        if (ValidateCharge(charge) is { } invalid) return Task.FromResult(Invalid<UsageReceipt>(invalid));
        if (State is null) return Task.FromResult(NotFound<UsageReceipt>());
        if (recentReceipts.TryGet(charge.UsageId, out var receipt)) return Task.FromResult(BillingResult<UsageReceipt>.Ok(receipt));
        return Commits.Submit(new ChargeOperation(charge));
    }

    public async Task<BillingResult<AccountView>> Credit(AccountCredit credit)
    {
        if (MoneyAmounts.Refusal(credit.Amount, "amount") is { } badAmount) return Invalid<AccountView>(badAmount);
        if (!HistoryReasons.CreditReasons.Contains(credit.Reason))
            return Invalid<AccountView>($"reason must be one of: {string.Join(", ", HistoryReasons.CreditReasons)}.");
        if (credit.CreditId == Guid.Empty) return Invalid<AccountView>("creditId must not be the nil UUID.");
        if (State is null) return NotFound<AccountView>();
        return await TopUp(new CreditOperation(credit));
    }

    public Task<BillingResult<AccountView>> ChangePlan(PlanChange plan)
    {
        if (MoneyAmounts.QuotaRefusal(plan.MonthlyQuota) is { } badQuota) return Task.FromResult(Invalid<AccountView>(badQuota));
        if (!plan.IsPro && plan.MonthlyQuota != 0) return Task.FromResult(Invalid<AccountView>("monthlyQuota applies to pro accounts only; use 0."));
        if (State is null) return Task.FromResult(NotFound<AccountView>());
        return Commits.Submit(new PlanChangeOperation(plan));
    }

    /// <summary>The project's zero-amount row for a usage its user paid; a duplicate in flight shares the first's answer.</summary>
    private protected Task RecordFallbackMarker(UsageReceipt userReceipt, Guid modelId)
    {
        if (State is null) return Task.CompletedTask;
        return Commits.Submit(new UserFallbackOperation(userReceipt, modelId));
    }

    /// <summary>
    /// The trust boundary (DESIGN.md): a charge or a fallback marker only from the billing grains (usage goes
    /// through <see cref="IUsageGrain"/>); a credit, a plan change or an initialisation also from a cluster client
    /// (the gateway, which checks the admin role at HTTP); never from any other grain, such as an agent's.
    /// Refused calls get <see cref="BillingStatus.Forbidden"/> and change nothing. Reads are open.
    /// </summary>
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        var method = context.InterfaceMethod.Name;
        var caller = Callers.Classify(context.SourceId);
        var allowed = method switch
        {
            nameof(IAccountGrain.Charge) or nameof(IProjectGrain.RecordUserFallback) => caller == CallerKind.BillingGrain,
            _ when HoldCallers.MovesMoney(method) => caller == CallerKind.BillingGrain,
            nameof(IAccountGrain.Credit) or nameof(IAccountGrain.ChangePlan) or nameof(IUserGrain.Initialize)
                or nameof(ICreditGrants.Grant) or nameof(ICreditGrants.VoidGrant) =>
                caller is CallerKind.BillingGrain or CallerKind.Client,
            _ => true,
        };
        if (allowed)
        {
            await context.Invoke();
            return;
        }

        LogForbidden(logger, method, Table.Kind, AccountId, context.SourceId?.ToString(), caller);
        BillingMetrics.RecordRefusal(BillingStatus.Forbidden);
        var detail = $"{method} on a {Table.Scope} account is not allowed from this caller: only the billing grains move money.";
        context.Result = method switch
        {
            nameof(IAccountGrain.Charge) => BillingResult<UsageReceipt>.Fail(BillingStatus.Forbidden, detail),
            nameof(IUserGrain.Initialize) => BillingResult<AccountInitialized>.Fail(BillingStatus.Forbidden, detail),
            nameof(IProjectGrain.RecordUserFallback) => throw new BillingOperationFailedException(detail),
            _ when HoldCallers.MovesMoney(method) => HoldCallers.Forbidden(method, detail),
            nameof(ICreditGrants.Grant) => BillingResult<GrantIssued>.Fail(BillingStatus.Forbidden, detail),
            nameof(ICreditGrants.VoidGrant) => BillingResult<GrantView>.Fail(BillingStatus.Forbidden, detail),
            _ => BillingResult<AccountView>.Fail(BillingStatus.Forbidden, detail),
        };
    }

    private string? ValidateCharge(AccountCharge charge)
    {
        if (charge.UsageId == Guid.Empty) return "usageId must not be the nil UUID.";
        if (charge.ModelId == Guid.Empty) return "modelId must not be the nil UUID.";
        if (charge.Cost < 0) return "cost must not be negative.";
        if (charge.InputTokens < 0 || charge.OutputTokens < 0) return "Token counts must not be negative.";
        if (charge.Currency is null || !CurrencyCode().IsMatch(charge.Currency)) return "currency must be a three-letter upper-case ISO 4217 code.";
        if (charge.Reason is null || !ChargeReasons.Contains(charge.Reason))
            return $"reason of a {Table.Scope} charge must be one of: {string.Join(", ", ChargeReasons)}.";
        return null;
    }

    [GeneratedRegex("^[A-Z]{3}$")]
    private static partial Regex CurrencyCode();

    /// <summary>Creates the account once; concurrent initialisations of one account run one after another.</summary>
    private protected async Task<BillingResult<AccountInitialized>> InitializeOnce(Func<Task<BillingResult<AccountInitialized>>> create)
    {
        await initialization.WaitAsync();
        try
        {
            await Commits.ReloadIfNeeded(); // an account seen before a fault is read again, not served stale
            return await create();
        }
        finally
        {
            initialization.Release();
        }
    }

    private protected BillingResult<T> NotFound<T>() where T : class =>
        BillingResult<T>.Fail(BillingStatus.AccountNotFound, $"The {Table.Scope} account {AccountId} was never initialised.");

    private protected static BillingResult<T> Invalid<T>(string detail) where T : class =>
        BillingResult<T>.Fail(BillingStatus.InvalidInput, detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{AccountKind} account {AccountId} could not be loaded; its activation fails with a retryable fault")]
    private static partial void LogActivationFailed(ILogger logger, Exception exception, AccountKind accountKind, Guid accountId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Method} on {AccountKind} account {AccountId} from {Caller} ({CallerKind}): outside the trust boundary")]
    private static partial void LogForbidden(ILogger logger, string method, AccountKind accountKind, Guid accountId, string? caller, CallerKind callerKind);
}
