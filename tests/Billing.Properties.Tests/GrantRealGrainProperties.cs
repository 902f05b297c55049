using Billing.Accounts;
using Billing.Hosting;
using Billing.Testing;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;
using Xunit.Abstractions;

namespace Billing.Properties.Tests;

/// <summary>
/// A cluster of its own (its clock moves): a grant clock sweeping every 200 ms, so idle accounts write their
/// expiries and effects without anybody calling, and a signup grant that expires after 6 hours.
/// </summary>
public sealed class GrantGrainCluster : RealGrainCluster
{
    public AdjustableClock Clock { get; } = new();

    protected override string DatabaseName => "propsgrants";

    protected override void ConfigureSilo(ISiloBuilder silo)
    {
        silo.Services.AddSingleton<TimeProvider>(Clock);
        silo.Services.Configure<CreditGrantOptions>(options =>
        {
            options.SweepInterval = TimeSpan.FromMilliseconds(200);
            options.SignupExpiresAfterDays = 0.25;
        });
    }
}

/// <summary>One call on a real account, with times on a half-hour grid from the sequence's start (so grants tie).</summary>
public abstract record RealGrantOp
{
    /// <summary>In effect <see cref="EffectiveSlot"/> half hours from now (null: now), expiring <see cref="ExpiresAfterSlots"/> half hours later (null: never).</summary>
    public sealed record Give(decimal Amount, GrantCategory Category, int Priority, int? EffectiveSlot, int? ExpiresAfterSlots) : RealGrantOp;

    /// <summary>Input tokens at 0.01 each.</summary>
    public sealed record Charge(int Tokens) : RealGrantOp;

    public sealed record TopUp(decimal Amount) : RealGrantOp;

    public sealed record Void(int Index) : RealGrantOp;

    /// <summary>The clock moves on, possibly while calls are still in flight.</summary>
    public sealed record Advance(int Minutes) : RealGrantOp;
}

/// <summary>
/// Random grants, charges, top-ups, voids and time moving on (some concurrent, some in flight while the clock moves)
/// on real user accounts (grains on PostgreSQL, the grant clock sweeping). Then the account's history is replayed
/// from its first row: every charge drew what a greedy walk in the spending order takes from the grants active at
/// that row (none of them past its expiry or before its effect), every expiry and void took exactly what was left,
/// the replayed grants are the account's grants and its balance; and the database's invariants hold (I1…, G1, G2, E1).
/// </summary>
public class GrantRealGrainProperties(GrantGrainCluster fixture, ITestOutputHelper output) : IClassFixture<GrantGrainCluster>
{
    private static readonly Gen<RealGrantOp[]> Ops = Gen.Frequency(
            (4, from c in Gen.Choose(1, 2_000)
                from cat in Gen.Elements(GrantCategory.Promotional, GrantCategory.Paid)
                from p in Gen.Frequency((3, Gen.Elements(0, 10, 50, 100)), (1, Gen.Choose(0, 100)))
                from eff in Gen.Frequency((2, Gen.Constant<int?>(null)), (3, Gen.Choose(-4, 8).Select(k => (int?)k)))
                from exp in Gen.Frequency((2, Gen.Constant<int?>(null)), (3, Gen.Choose(1, 10).Select(m => (int?)m)))
                select (RealGrantOp)new RealGrantOp.Give(c / 100m, cat, p, eff, exp)),
            (6, from t in Gen.Choose(0, 1_500) select (RealGrantOp)new RealGrantOp.Charge(t)),
            (1, from c in Gen.Choose(1, 1_000) select (RealGrantOp)new RealGrantOp.TopUp(c / 100m)),
            (2, from i in Gen.Choose(0, 40) select (RealGrantOp)new RealGrantOp.Void(i)),
            (2, from m in Gen.Elements(10, 30, 60, 90, 240) select (RealGrantOp)new RealGrantOp.Advance(m)))
        .ListOf().Select(l => l.Take(40).ToArray());

    [Fact]
    public async Task Random_grants_charges_voids_and_time_on_a_real_account_replay_from_its_history()
    {
        var grains = fixture.Cluster.Client;
        var model = Guid.NewGuid();
        Assert.True((await grains.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput(10_000m, 10_000m, "USD", DateTimeOffset.UtcNow.AddMinutes(-1)))).IsOk);
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        var seen = new Dictionary<string, int>();
        foreach (var ops in Ops.Sample(12, 40)) // 12 accounts, up to 40 calls each
        {
            var user = Guid.NewGuid();
            Assert.True((await grains.GetGrain<IUserGrain>(user).Initialize()).IsOk);
            var account = grains.GetGrain<IUserGrain>(user);
            var context = $"seed {seed}, user {user}, ops [{string.Join(", ", ops.Select(o => o.ToString()))}]";
            var origin = TruncateToSecond(fixture.Clock.GetUtcNow());
            var advanced = TimeSpan.Zero;
            var given = new List<Guid>();
            var tasks = new List<Task<string?>>();
            foreach (var op in ops)
            {
                switch (op)
                {
                    case RealGrantOp.Give g:
                        var grantId = Guid.NewGuid();
                        given.Add(grantId);
                        var slot = origin + advanced + TimeSpan.FromMinutes(30 * (g.EffectiveSlot ?? 0));
                        tasks.Add(Expect(account.Grant(new GrantInput(grantId, g.Amount, g.Category, g.Priority, g.EffectiveSlot is null ? null : slot,
                            g.ExpiresAfterSlots is { } m ? slot + TimeSpan.FromMinutes(30 * m) : null, null)),
                            // In effect "now" with an expiry: refused when the clock has moved past that expiry before the grant arrives.
                            r => r.IsOk || (g.EffectiveSlot is null && g.ExpiresAfterSlots is not null && r.Problem!.Status == BillingStatus.InvalidInput), g));
                        break;
                    case RealGrantOp.Charge c:
                        tasks.Add(Expect(grains.GetGrain<IUsageGrain>(0).RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, c.Tokens, 0)),
                            r => r.IsOk || r.Problem!.Status == BillingStatus.InsufficientBalance, c));
                        break;
                    case RealGrantOp.TopUp t:
                        tasks.Add(Expect(account.Credit(new AccountCredit(t.Amount, HistoryReasons.TopUp, Guid.NewGuid())), r => r.IsOk, t));
                        break;
                    case RealGrantOp.Void v when given.Count > 0:
                        // Not yet written (still in flight) is GrantNotFound; voided, expired or depleted before answers the grant.
                        tasks.Add(Expect(grains.GetGrain<IGrantsGrain>(0).Void(given[v.Index % given.Count]),
                            r => r.IsOk || r.Problem!.Status == BillingStatus.GrantNotFound, v));
                        break;
                    case RealGrantOp.Advance a:
                        advanced += TimeSpan.FromMinutes(a.Minutes);
                        fixture.Clock.Advance(TimeSpan.FromMinutes(a.Minutes));
                        break;
                }

                if (rng.Next(3) == 0) await Task.WhenAll(tasks);
            }

            var answers = await Task.WhenAll(tasks);
            Assert.True(answers.All(a => a is null), $"{string.Join('\n', answers.Where(a => a is not null))}\n{context}");

            // The account as of now: reading its grants applies what time has made due; read until the grant clock is not writing meanwhile.
            HistoryEntry[] history;
            GrantView[] grants;
            AccountView view;
            DateTimeOffset readAt;
            var attempts = 0;
            while (true)
            {
                readAt = fixture.Clock.GetUtcNow();
                grants = (await account.GetGrants(new GrantQuery(null, 500, null))).Value!.Items;
                history = [.. (await account.GetHistory(new HistoryQuery(500, null))).Value!.Items.Reverse()];
                view = (await account.GetAccount()).Value!;
                var again = (await account.GetGrants(new GrantQuery(null, 500, null))).Value!.Items;
                if ((again.SequenceEqual(grants) && view.Version == history[^1].Sequence) || ++attempts == 5) break;
            }

            var failure = Replay(history, grants, view, readAt);
            Assert.True(failure is null, $"{failure}\n{context}");
            var violations = await LedgerInvariants.FindViolationsAsync(fixture.ConnectionString, new LedgerScope([user], []));
            Assert.True(violations.Count == 0, $"{string.Join('\n', violations)}\n{context}");
            foreach (var row in history)
            {
                var kind = row.Reason == HistoryReasons.AiUsagePersonal && row.Grants?.Length > 1 ? "charge over several grants" : row.Reason;
                seen[kind] = seen.GetValueOrDefault(kind) + 1;
            }
        }

        // What the random sequences exercised (seed to replay them).
        output.WriteLine($"seed {seed}: " + string.Join(", ", seen.OrderBy(k => k.Key).Select(k => $"{k.Key} {k.Value}")));
    }

    private static DateTimeOffset TruncateToSecond(DateTimeOffset t) => t.AddTicks(-(t.Ticks % TimeSpan.TicksPerSecond));

    private static async Task<string?> Expect<T>(Task<BillingResult<T>> call, Func<BillingResult<T>, bool> expected, RealGrantOp op)
        where T : class
    {
        var result = await call;
        return expected(result) ? null : $"{op} answered {result.Problem}";
    }

    /// <summary>Walks the history from its first row with a model of the grants built from their attributes alone; null when it explains the account.</summary>
    public static string? Replay(HistoryEntry[] history, GrantView[] grants, AccountView view, DateTimeOffset readAt)
    {
        var byId = grants.ToDictionary(g => g.GrantId);
        var remaining = new Dictionary<Guid, decimal>();
        var ended = new Dictionary<Guid, GrantStatus>();
        var balance = 0m;
        for (var i = 0; i < history.Length; i++)
        {
            var row = history[i];
            var at = $"row {row.Sequence} ({row.Reason} {row.Amount} at {row.CreatedAt:O})";
            if (row.Sequence != i + 1) return $"{at}: sequence, expected {i + 1}";
            balance += row.Amount;
            if (row.BalanceAfter != balance) return $"{at}: balanceAfter {row.BalanceAfter} != running sum {balance} (I1)";
            var draws = row.Grants ?? [];
            if (draws.Sum(d => d.Amount) != row.Amount) return $"{at}: its grants add up to {draws.Sum(d => d.Amount)} (G1)";
            if (draws.Any(d => !byId.ContainsKey(d.GrantId))) return $"{at}: draws on a grant the account does not list";
            switch (row.Reason)
            {
                case HistoryReasons.SignupCredit or HistoryReasons.TopUp or GrantReasons.GrantCredit:
                    if (draws is not [{ Amount: > 0m } credit]) return $"{at}: a credit row must credit one grant";
                    var g = byId[credit.GrantId];
                    if (remaining.ContainsKey(g.GrantId) || ended.ContainsKey(g.GrantId)) return $"{at}: grant {g.GrantId} credited twice";
                    if (credit.Amount != g.Amount) return $"{at}: credits {credit.Amount} of a grant of {g.Amount}";
                    if (row.CreatedAt < g.EffectiveAt) return $"{at}: credits a grant in effect from {g.EffectiveAt:O}";
                    remaining[g.GrantId] = g.Amount;
                    break;
                case HistoryReasons.AiUsagePersonal:
                    // The grants active at this row: in effect, not past their expiry (time is applied before any charge), in spending order.
                    var active = remaining.Where(r => r.Value > 0).Select(r => byId[r.Key]).ToList();
                    if (active.FirstOrDefault(a => a.ExpiresAt <= row.CreatedAt) is { } stale) return $"{at}: grant {stale.GrantId} expiring {stale.ExpiresAt:O} still active";
                    active.Sort((a, b) => SpendingKey.Compare(Key(a), Key(b)));
                    var expected = new List<GrantDraw>();
                    var left = -row.Amount;
                    foreach (var a in active)
                    {
                        if (left == 0) break;
                        var take = Math.Min(left, remaining[a.GrantId]);
                        expected.Add(new GrantDraw(a.GrantId, -take));
                        left -= take;
                    }

                    if (left != 0) return $"{at}: the active grants cannot pay it";
                    if (!draws.SequenceEqual(expected))
                        return $"{at}: draws [{string.Join(", ", draws.Select(d => d.ToString()))}], the spending order says [{string.Join(", ", expected)}]; active: {string.Join("; ", active.Select(a => $"{Key(a)} left {remaining[a.GrantId]}"))}";
                    break;
                case GrantReasons.GrantExpired or GrantReasons.GrantVoided:
                    if (draws is not [{ } taken] || !remaining.TryGetValue(taken.GrantId, out var was) || was <= 0 || taken.Amount != -was)
                        return $"{at}: must take all that is left of one active grant";
                    if (row.Reason == GrantReasons.GrantExpired && row.CreatedAt < byId[taken.GrantId].ExpiresAt) return $"{at}: expires a grant before its expiry {byId[taken.GrantId].ExpiresAt:O}";
                    ended[taken.GrantId] = row.Reason == GrantReasons.GrantExpired ? GrantStatus.Expired : GrantStatus.Voided;
                    break;
                default:
                    return $"{at}: a reason this sequence never causes";
            }

            foreach (var d in draws)
            {
                if (d.Amount < 0) remaining[d.GrantId] += d.Amount;
                if (remaining[d.GrantId] < 0) return $"{at}: grant {d.GrantId} below zero (G2)";
            }
        }

        if (view.Balance != balance) return $"balance {view.Balance} != its history {balance}";
        foreach (var g in grants)
        {
            var credited = remaining.TryGetValue(g.GrantId, out var left);
            var status = ended.TryGetValue(g.GrantId, out var e) ? e
                : credited ? (left > 0 ? GrantStatus.Active : GrantStatus.Depleted)
                : g.Status == GrantStatus.Voided ? GrantStatus.Voided // voided before it came into effect: no row
                : GrantStatus.Scheduled;
            var expectedRemaining = credited ? left : status == GrantStatus.Voided ? 0m : g.Amount;
            if (ended.ContainsKey(g.GrantId)) expectedRemaining = 0m;
            if (g.Status != status || g.Remaining != expectedRemaining) return $"grant {Key(g)} is {g.Status} {g.Remaining}/{g.Amount}; its history says {status} {expectedRemaining}";
            if (status == GrantStatus.Scheduled && g.EffectiveAt <= readAt) return $"grant {g.GrantId} still scheduled after its effect {g.EffectiveAt:O}";
            if (status == GrantStatus.Active && g.ExpiresAt <= readAt) return $"grant {g.GrantId} still active after its expiry {g.ExpiresAt:O}";
        }

        var inEffect = grants.Where(g => g.Status == GrantStatus.Active).Sum(g => g.Remaining);
        return inEffect == view.Balance ? null : $"G1: balance {view.Balance} != active grants' remaining {inEffect}";
    }

    private static SpendingKey Key(GrantView g) => new(g.Priority, g.ExpiresAt, g.Category, g.EffectiveAt, g.GrantId);
}
