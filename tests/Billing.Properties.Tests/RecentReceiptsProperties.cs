using Billing.Accounts;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Billing.Properties.Tests;

/// <summary>
/// The account's cache of its latest receipts (a ring of structs) against the obvious model: the last
/// <c>kept</c> distinct usage ids remembered, each answered with the receipt it was given, nothing older.
/// </summary>
public sealed class RecentReceiptsProperties
{
    [Property(MaxTest = 300)]
    public Property The_cache_answers_exactly_the_latest_distinct_receipts_with_their_values() =>
        Prop.ForAll(
            Gen.Choose(1, 9).ToArbitrary(),
            Gen.ListOf(Gen.Choose(0, 30)).Select(ids => ids.ToArray()).ToArbitrary(),
            (kept, usageNumbers) =>
            {
                var cache = new RecentReceipts(kept);
                var model = new List<UsageReceipt>();
                foreach (var number in usageNumbers)
                {
                    var receipt = ReceiptOf(number);
                    cache.Remember(receipt);
                    if (model.Any(r => r.UsageId == receipt.UsageId)) continue; // a repeat neither moves nor replaces it
                    model.Add(receipt);
                    if (model.Count > kept) model.RemoveAt(0);
                }

                for (var number = 0; number <= 30; number++)
                {
                    var usageId = UsageIdOf(number);
                    var expected = model.FirstOrDefault(r => r.UsageId == usageId);
                    var found = cache.TryGet(usageId, out var answered);
                    if (found != expected is not null) return false;
                    if (found && answered != expected) return false;
                }
                return true;
            });

    [Fact]
    public void A_repeated_usage_id_keeps_its_first_receipt()
    {
        var cache = new RecentReceipts(4);
        var first = ReceiptOf(1);
        cache.Remember(first);
        cache.Remember(first with { Cost = 9m, BalanceAfter = 1m });

        Assert.True(cache.TryGet(first.UsageId, out var answered));
        Assert.Equal(first, answered);
    }

    private static Guid UsageIdOf(int number) => new(number, 0, 0, new byte[8]);

    // Values differ per usage so a receipt answered from the wrong slot fails the comparison.
    private static UsageReceipt ReceiptOf(int number) => new(
        UsageIdOf(number), 0.001m * number, number % 2 == 0 ? "USD" : new string("USD".AsSpan()), 1_000 + number, 50 + number,
        number % 3 == 0 ? PayingAccount.User : PayingAccount.Project, new Guid(7, 0, 0, new byte[8]),
        100m - number, 0.5m * number);
}
