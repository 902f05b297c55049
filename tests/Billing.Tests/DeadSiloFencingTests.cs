using System.Collections.Immutable;
using System.Net;
using System.Runtime.CompilerServices;
using Billing.Storage;
using Billing.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// A silo declared dead is fenced out of the database: its sessions are terminated, rolling back what it left open.
/// Real PostgreSQL; the membership is a fixed snapshot (the one thing Orleans tells this service).
/// </summary>
public sealed class DeadSiloFencingTests
{
    [Fact]
    public async Task ReviewDefect_A_fence_that_fails_once_is_tried_again_without_waiting_for_another_membership_change()
    {
        var database = await PostgresServer.Instance.CreateDatabaseAsync("fence", []);
        var dead = SiloAddress.New(IPAddress.Loopback, 40_001, 7);

        // The frozen silo's session, in the middle of a transaction.
        await using var frozen = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(database) { ApplicationName = DeadSiloFencing.ApplicationName(dead) }.ConnectionString);
        await frozen.OpenAsync();
        await using var open = await frozen.BeginTransactionAsync();
        var frozenPid = frozen.ProcessID;

        // The fencing silo's pool has one connection, and something else holds it: the first fence fails (pool
        // exhausted within its 1 s timeout), as it would in a database blip at the moment the silo is declared dead.
        await using var dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(database) { MaxPoolSize = 1, Timeout = 1 }.ConnectionString);
        var busy = await dataSource.OpenConnectionAsync();
        using var fencing = new DeadSiloFencing(dataSource, new OneSnapshot(dead), NullLogger<DeadSiloFencing>.Instance);
        await fencing.StartAsync(CancellationToken.None);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(2)); // the first attempt has failed by now
            Assert.True(await IsAliveAsync(database, frozenPid));
            await busy.DisposeAsync(); // the blip is over; no membership change follows

            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (await IsAliveAsync(database, frozenPid))
            {
                Assert.True(DateTime.UtcNow < deadline, "the dead silo's session was never terminated after the first fence failed");
                await Task.Delay(100);
            }
        }
        finally
        {
            await fencing.StopAsync(CancellationToken.None);
        }
    }

    private static async Task<bool> IsAliveAsync(string database, int pid)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = pid });
        return (long)(await command.ExecuteScalarAsync())! == 1;
    }

    /// <summary>Membership that reports one dead silo once, then nothing more.</summary>
    private sealed class OneSnapshot(SiloAddress dead) : IClusterMembershipService
    {
        public ClusterMembershipSnapshot CurrentSnapshot { get; } = new(
            ImmutableDictionary<SiloAddress, ClusterMember>.Empty.Add(dead, new ClusterMember(dead, SiloStatus.Dead, "frozen")),
            new MembershipVersion(2));

        public IAsyncEnumerable<ClusterMembershipSnapshot> MembershipUpdates => Updates();

        private async IAsyncEnumerable<ClusterMembershipSnapshot> Updates([EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            yield return CurrentSnapshot;
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        public ValueTask Refresh(MembershipVersion minimumVersion = default, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public Task<bool> TryKill(SiloAddress siloAddress) => Task.FromResult(false);
    }
}
