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
        BillingStatus.CreatorConflict => new Outcome(OutcomeKind.Conflict, 409, p.Detail),
        _ => new Outcome(OutcomeKind.Invalid, 400, $"{p.Status}: {p.Detail}"),
    };

    public ValueTask DisposeAsync() => connection.DisposeAsync();
}
