using System.Collections.Concurrent;
using Billing.Storage;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// The writer that stores the refusals of a moment together (<see cref="ClaimWriter{TClaim}"/>), driven with a store of
/// the test's own on the real database: what one statement carries, and what a statement's failure does to its claims.
/// The refusal statements themselves are tested through the grains (ConcurrencyTests, HoldTests, TopUpResolutionTests).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClaimWriterTests(ClusterFixture fixture)
{
    private sealed record Claim(Guid Key, bool Poison = false, bool Deadlocks = false);

    /// <summary>A store that records each statement's keys, fails as data when it carries a poison claim, and claims each key once.</summary>
    private sealed class RecordingStore
    {
        private readonly HashSet<Guid> taken = [];
        private int deadlocks; // statements with a Deadlocks claim that were aborted so far (the first two are)

        public TaskCompletionSource FirstStatementMayFinish { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<Guid[]> Statements { get; } = new();

        public async Task<HashSet<Guid>> StoreAsync(Claim[] claims, NpgsqlConnection connection)
        {
            Statements.Enqueue(claims.Select(c => c.Key).ToArray());
            if (Statements.Count == 1) await FirstStatementMayFinish.Task; // the claims sent meanwhile queue up behind it
            var sql = claims.Any(c => c.Poison) ? "SELECT 1 / 0"
                : claims.Any(c => c.Deadlocks) && Interlocked.Increment(ref deadlocks) <= 2 ? "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$"
                : "SELECT 1";
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteScalarAsync();
            lock (taken) return claims.Select(c => c.Key).Where(taken.Add).ToHashSet();
        }
    }

    [Fact]
    public async Task A_claim_the_database_refuses_as_data_fails_alone_and_the_others_of_its_statement_are_stored()
    {
        await using var dataSource = NpgsqlDataSource.Create(fixture.ConnectionString);
        var store = new RecordingStore();
        await using var writer = new ClaimWriter<Claim>(dataSource, c => c.Key, store.StoreAsync);
        var first = writer.ClaimAsync(new Claim(Guid.NewGuid()));
        while (store.Statements.IsEmpty) await Task.Delay(5);

        var poison = new Claim(Guid.NewGuid(), Poison: true);
        var others = Enumerable.Range(0, 99).Select(_ => new Claim(Guid.NewGuid())).ToList();
        var claims = others.Take(50).Append(poison).Concat(others.Skip(50)).Select(writer.ClaimAsync).ToList();
        store.FirstStatementMayFinish.SetResult();

        Assert.True(await first);
        var error = await Assert.ThrowsAsync<PostgresException>(() => claims[50]);
        Assert.Equal(PostgresErrorCodes.DivisionByZero, error.SqlState);
        foreach (var (claim, i) in claims.Select((c, i) => (c, i)).Where(c => c.i != 50)) Assert.True(await claim, $"claim {i}");
        var statements = store.Statements.ToArray();
        Assert.Equal(100, statements[1].Length); // the hundred that waited went together, then one by one once it failed
        Assert.Equal(1 + 1 + 100, statements.Length);
        Assert.All(statements, keys => Assert.Equal(keys.Order(), keys)); // in key order: no two statements wait on each other in a cycle
    }

    [Fact]
    public async Task A_statement_aborted_to_break_a_deadlock_is_sent_again_and_its_claims_are_stored()
    {
        await using var dataSource = NpgsqlDataSource.Create(fixture.ConnectionString);
        var store = new RecordingStore();
        await using var writer = new ClaimWriter<Claim>(dataSource, c => c.Key, store.StoreAsync);
        store.FirstStatementMayFinish.SetResult();

        Assert.True(await writer.ClaimAsync(new Claim(Guid.NewGuid(), Deadlocks: true)));
        Assert.Equal(3, store.Statements.Count); // aborted twice, stored the third time
    }

    [Fact]
    public async Task Copies_of_one_key_never_share_a_statement_and_only_the_first_claims_it()
    {
        await using var dataSource = NpgsqlDataSource.Create(fixture.ConnectionString);
        var store = new RecordingStore();
        await using var writer = new ClaimWriter<Claim>(dataSource, c => c.Key, store.StoreAsync);
        var first = writer.ClaimAsync(new Claim(Guid.NewGuid()));
        while (store.Statements.IsEmpty) await Task.Delay(5);

        var copied = Guid.NewGuid();
        var sent = Enumerable.Range(0, 40).Select(i => new Claim(i % 4 == 0 ? copied : Guid.NewGuid())).ToList();
        var answers = sent.Select(writer.ClaimAsync).ToList();
        store.FirstStatementMayFinish.SetResult();

        Assert.True(await first);
        var results = await Task.WhenAll(answers);
        Assert.Equal(1, results.Where((_, i) => sent[i].Key == copied).Count(claimed => claimed));
        Assert.All(results.Where((_, i) => sent[i].Key != copied), claimed => Assert.True(claimed));
        Assert.All(store.Statements, keys => Assert.Equal(keys.Length, keys.Distinct().Count()));
        Assert.Equal(10, store.Statements.Count(keys => keys.Contains(copied))); // each copy in a statement of its own
    }
}
