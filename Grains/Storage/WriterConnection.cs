using System.Data;
using System.Threading.Channels;
using Npgsql;

namespace Billing.Storage;

/// <summary>
/// The connection a ledger writer loop sends its transactions on while it has work. Npgsql's pool hands out its idle
/// connections in turn (a queue: npgsql/npgsql#4818), so a writer that took one per transaction spread its statements
/// over every connection the silo had opened (dozens after a burst of reads), each a PostgreSQL backend with cold
/// caches and its own prepared copy of the ledger statement. The loop keeps one while writes keep coming and gives it
/// back to the pool after <see cref="ReleaseAfter"/> without any, so an idle writer holds nothing that a restart of
/// the server or a dropped connection could leave broken: the pool deals with those as with every other connection.
/// </summary>
internal sealed class WriterConnection(NpgsqlDataSource dataSource) : IAsyncDisposable
{
    /// <summary>How long a writer with nothing to write keeps its connection.</summary>
    public static readonly TimeSpan ReleaseAfter = TimeSpan.FromSeconds(1);

    private NpgsqlConnection? connection;
    private CancellationTokenSource idle = new();

    /// <summary>The loop's open connection: the kept one while it is open, else one from the pool.</summary>
    public async Task<NpgsqlConnection> OpenAsync()
    {
        if (connection is { FullState: not ConnectionState.Open }) await ReleaseAsync();
        return connection ??= await dataSource.OpenConnectionAsync();
    }

    /// <summary>
    /// Waits for the next write, as <see cref="ChannelReader{T}.WaitToReadAsync"/>; a connection kept that long without
    /// one goes back to the pool meanwhile.
    /// </summary>
    public async ValueTask<bool> WaitToReadAsync<T>(ChannelReader<T> reader)
    {
        if (connection is null || reader.TryPeek(out _)) return await reader.WaitToReadAsync();

        idle.CancelAfter(ReleaseAfter);
        try
        {
            var more = await reader.WaitToReadAsync(idle.Token);
            if (!idle.TryReset()) Renew(); // the timer fired just as a write came: nothing was released
            return more;
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested)
        {
            Renew();
            await ReleaseAsync();
            return await reader.WaitToReadAsync();
        }
    }

    /// <summary>Gives the connection back (after a fault whose effect on it is unknown, the pool discards it if broken).</summary>
    public async Task ReleaseAsync()
    {
        var released = connection;
        connection = null;
        if (released is not null) await released.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await ReleaseAsync();
        idle.Dispose();
    }

    private void Renew()
    {
        idle.Dispose();
        idle = new CancellationTokenSource();
    }
}
