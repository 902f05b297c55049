using Billing.Testing;

namespace Billing.Bank;

/// <summary>Direct grain calls through an Orleans client (used when the gateway is not built).</summary>
public sealed class OrleansTransport : ITransport
{
    private readonly BillingClusterClient connection;
    private readonly IClusterClient client;

    private OrleansTransport(BillingClusterClient connection)
    {
        this.connection = connection;
        client = connection.Client;
    }

    public string Name => "Orleans client (IUsageGrain / account grains)";

    public static async Task<OrleansTransport> Connect(string connectionString, string clusterId, string serviceId, CancellationToken ct) =>
        new(await BillingClusterClient.StartAsync(connectionString, clusterId, serviceId, new BillingClientOptions { ResponseTimeout = TimeSpan.FromSeconds(10) }, ct));

    public void DropConnections()
    {
        // An Orleans client keeps its gateway connections; a dropped caller is simulated by abandoning calls (short deadlines).
    }

    public Task<Outcome> InitUser(Guid user, CancellationToken ct) =>
        Call(async () => Map(await client.GetGrain<IUserGrain>(user).Initialize().WaitAsync(ct)), ct);

    public Task<Outcome> InitProject(Guid project, Guid creator, CancellationToken ct) =>
        Call(async () => Map(await client.GetGrain<IProjectGrain>(project).Initialize(creator).WaitAsync(ct)), ct);

    public Task<Outcome> Usage(Guid usageId, Guid project, Guid user, Guid model, long input, long output, CancellationToken ct) =>
        Call(async () => Map(await client.GetGrain<IUsageGrain>(0).RecordAiUsage(new AiUsage(usageId, project, user, model, input, output)).WaitAsync(ct)), ct);

    public Task<Outcome> PersonalUsage(Guid usageId, Guid user, Guid model, long input, long output, CancellationToken ct) =>
        Call(async () => Map(await client.GetGrain<IUsageGrain>(0).RecordPersonalUsage(new PersonalUsage(usageId, user, model, input, output)).WaitAsync(ct)), ct);

    public Task<Outcome> TopUp(AccountKind kind, Guid account, decimal amount, Guid creditId, CancellationToken ct)
    {
        IAccountGrain grain = kind == AccountKind.User ? client.GetGrain<IUserGrain>(account) : client.GetGrain<IProjectGrain>(account);
        return Call(async () =>
        {
            var r = await grain.Credit(new AccountCredit(amount, HistoryReasons.TopUp, creditId)).WaitAsync(ct);
            return r.IsOk ? new Outcome(OutcomeKind.Ok, 200, BalanceAfter: r.Value!.Balance) : Problem(r.Problem!);
        }, ct);
    }

    public Task<Outcome> PlaceHold(Guid holdId, Guid? project, Guid user, Guid model, long input, long maxOutput, int ttlSeconds, CancellationToken ct) =>
        Call(async () => Map(await client.GetGrain<IUsageGrain>(0).PlaceHold(new HoldRequest(holdId, project, user, model, input, maxOutput, ttlSeconds)).WaitAsync(ct)), ct);

    public Task<Outcome> CaptureHold(Guid holdId, long input, long output, Guid? usageId, CancellationToken ct) => Call(async () =>
    {
        var r = await client.GetGrain<IUsageGrain>(0).CaptureHold(new HoldCapture(holdId, input, output, usageId)).WaitAsync(ct);
        if (!r.IsOk) return Problem(r.Problem!);
        var c = r.Value!;
        var payer = c.DeductedFrom == PayingAccount.Project ? "project" : "user";
        return new Outcome(OutcomeKind.Ok, 200, Cost: c.Cost, PaidBy: payer, BalanceAfter: c.BalanceAfter)
        {
            Capture = new CaptureAnswer(c.UsageId, c.HoldId, c.Cost, payer, c.AccountId, c.BalanceAfter, c.QuotaUsed, c.Held, c.Charged, c.Released, c.Shortfall, c.Late, c.ShortfallErrorId),
        };
    }, ct);

    public Task<Outcome> VoidHold(Guid holdId, CancellationToken ct) =>
        Call(async () => Map(await client.GetGrain<IUsageGrain>(0).VoidHold(holdId).WaitAsync(ct)), ct);

    public Task<Outcome> Grant(AccountKind kind, Guid account, Guid grantId, decimal amount, GrantCategory category, int priority,
        DateTimeOffset effectiveAt, DateTimeOffset? expiresAt, CancellationToken ct)
    {
        IAccountGrain grain = kind == AccountKind.User ? client.GetGrain<IUserGrain>(account) : client.GetGrain<IProjectGrain>(account);
        return Call(async () =>
        {
            var r = await grain.Grant(new GrantInput(grantId, amount, category, priority, effectiveAt, expiresAt, "bank")).WaitAsync(ct);
            if (!r.IsOk) return Problem(r.Problem!);
            var g = r.Value!.Grant;
            return new Outcome(OutcomeKind.Ok, r.Value.Created ? 201 : 200, Created: r.Value.Created)
            {
                Grant = new GrantAnswer(g.GrantId, g.Amount, g.Status.ToString().ToLowerInvariant(), g.ExpiresAt),
            };
        }, ct);
    }

    private static Outcome Map(BillingResult<HoldView> r) => r.IsOk
        ? new Outcome(OutcomeKind.Ok, 200)
        {
            Hold = new HoldAnswer(r.Value!.HoldId, r.Value.Status.ToString().ToLowerInvariant(), r.Value.Payer == PayingAccount.Project ? "project" : "user",
                r.Value.AccountId, r.Value.Amount, r.Value.ExpiresAt),
        }
        : Problem(r.Problem!);

    private static async Task<Outcome> Call(Func<Task<Outcome>> call, CancellationToken ct)
    {
        try
        {
            return await call();
        }
        catch (Exception e)
        {
            return Outcome.Unknown(e.GetType().Name + (ct.IsCancellationRequested ? " (abandoned)" : ""));
        }
    }

    private static Outcome Map(BillingResult<AccountInitialized> r) =>
        r.IsOk ? new Outcome(OutcomeKind.Ok, r.Value!.Created ? 201 : 200, Created: r.Value.Created, BalanceAfter: r.Value.Account.Balance) : Problem(r.Problem!);

    private static Outcome Map(BillingResult<UsageReceipt> r) =>
        r.IsOk
            ? new Outcome(OutcomeKind.Ok, 200, Cost: r.Value!.Cost, PaidBy: r.Value.DeductedFrom == PayingAccount.Project ? "project" : "user", BalanceAfter: r.Value.BalanceAfter)
            : Problem(r.Problem!);

    private static Outcome Problem(BillingProblem p) => p.Status switch
    {
        BillingStatus.InsufficientBalance => new Outcome(OutcomeKind.Refused, 402, p.Detail, BillingErrorId: p.BillingErrorId),
        BillingStatus.AccountNotFound => new Outcome(OutcomeKind.NotFound, 404, p.Detail),
        BillingStatus.CreatorConflict or BillingStatus.HoldConflict => new Outcome(OutcomeKind.Conflict, 409, p.Detail),
        BillingStatus.HoldNotFound or BillingStatus.GrantNotFound => new Outcome(OutcomeKind.NotFound, 404, p.Detail),
        BillingStatus.Overloaded => Outcome.Unknown($"{p.Status}: {p.Detail}", 503), // nothing was done: retried like a 503
        _ => new Outcome(OutcomeKind.Invalid, 400, $"{p.Status}: {p.Detail}"),
    };

    public ValueTask DisposeAsync() => connection.DisposeAsync();
}
