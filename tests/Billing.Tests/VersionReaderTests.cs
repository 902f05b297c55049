using Billing.Storage;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// The reads of accounts' stored versions that an account makes before it refuses (<see cref="VersionReader"/>, through
/// <see cref="LedgerStore.ReadVersionAsync"/>), sent together on the real database: each read gets its own account's
/// version however many share a round trip, and a fault fails only the reads it carried.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class VersionReaderTests(ClusterFixture fixture)
{
    [Fact]
    public async Task Reads_of_many_accounts_at_once_each_get_their_own_accounts_version_and_a_missing_account_reads_minus_one()
    {
        var users = Enumerable.Range(1, 300).Select(version => (Id: Guid.NewGuid(), Version: (long)version)).ToArray();
        await using (var connection = await Open())
        {
            await using var insert = new NpgsqlCommand("""
                INSERT INTO user_billing ("user", balance, currency, version, holds_seq, created_at, updated_at)
                SELECT id, 10, 'USD', version, version * 3, now(), now() FROM unnest($1::uuid[], $2::bigint[]) AS u(id, version)
                """, connection);
            insert.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = users.Select(u => u.Id).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = users.Select(u => u.Version).ToArray() });
            await insert.ExecuteNonQueryAsync();
        }

        await using var store = new LedgerStore(NpgsqlDataSource.Create(fixture.ConnectionString));
        // More than one round trip carries (256), copies of one account among them, accounts that do not exist, and
        // a project key that is a user: the tables are apart.
        var expected = users.Concat(users.Take(40)).Select(u => (Table: AccountTable.Users, u.Id, Version: new StoredVersion(u.Version, u.Version * 3)))
            .Concat(Enumerable.Range(0, 10).Select(_ => (Table: AccountTable.Users, Id: Guid.NewGuid(), Version: StoredVersion.Missing)))
            .Concat(users.Take(5).Select(u => (Table: AccountTable.Projects, u.Id, Version: StoredVersion.Missing)))
            .OrderBy(_ => Random.Shared.Next())
            .ToArray();

        var read = await Task.WhenAll(expected.Select(e => store.ReadVersionAsync(e.Table, e.Id)));

        Assert.Equal(expected.Select(e => e.Version), read);
    }

    [Fact]
    public async Task A_read_whose_connection_dies_fails_alone_and_the_next_reads_go_through()
    {
        var user = Guid.NewGuid();
        await using (var connection = await Open())
        {
            await using var insert = new NpgsqlCommand("""
                INSERT INTO user_billing ("user", balance, currency, version, created_at, updated_at) VALUES ($1, 10, 'USD', 7, now(), now())
                """, connection);
            insert.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = user });
            await insert.ExecuteNonQueryAsync();
        }

        await using var store = new LedgerStore(NpgsqlDataSource.Create(fixture.ConnectionString));
        Assert.Equal(7, (await store.ReadVersionAsync(AccountTable.Users, user)).Version); // the reader's connection is open

        // Hold the read up with a lock, then end its backend, as a restart or a dropped connection would.
        await using var locker = await Open();
        await using var locked = await locker.BeginTransactionAsync();
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE user_billing IN ACCESS EXCLUSIVE MODE", locker, locked)) await lockTable.ExecuteNonQueryAsync();
        var held = store.ReadVersionAsync(AccountTable.Users, user);
        await using (var observer = await Open())
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                await using var terminate = new NpgsqlCommand("""
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE pid <> pg_backend_pid() AND query LIKE 'SELECT version, holds_seq FROM user_billing%' AND wait_event_type = 'Lock'
                    """, observer);
                if ((long)(await terminate.ExecuteScalarAsync())! > 0) break;
                Assert.True(DateTime.UtcNow < deadline, "The read never waited for the lock.");
                await Task.Delay(20);
            }
        }

        // Bounded waits: a reader whose loop died with the fault would leave these reads unanswered, not failed.
        var fault = await Assert.ThrowsAnyAsync<Exception>(() => held.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.IsAssignableFrom<NpgsqlException>(fault); // the connection's end, not the wait running out
        await locked.RollbackAsync();

        Assert.Equal(7, (await store.ReadVersionAsync(AccountTable.Users, user).WaitAsync(TimeSpan.FromSeconds(30))).Version);
    }

    private async Task<NpgsqlConnection> Open()
    {
        var connection = new NpgsqlConnection(fixture.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }
}
