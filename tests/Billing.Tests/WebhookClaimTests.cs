using Billing.Storage;
using Billing.Testing;
using Billing.Webhooks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Billing.Tests;

/// <summary>
/// A webhook delivery's claims are not its attempts (migration 0018): a claim that ends with its silo uses none of the
/// receiver's 8 attempts, a silo that stops gives its claims back at once, and a delivery whose claims keep being lost
/// is given up instead of retried forever. Each test has a database of its own, with no silo's dispatcher in it.
/// </summary>
public sealed class WebhookClaimTests
{
    [Fact]
    public async Task ReviewDefect_A_claim_lost_with_its_silo_uses_no_attempt_of_the_schedule()
    {
        await using var dataSource = NpgsqlDataSource.Create(await PostgresServer.Instance.CreateDatabaseAsync("hooks"));
        var store = new WebhookStore(dataSource);
        var delivery = await DueDeliveryAsync(dataSource, store, "http://127.0.0.1:9/unused");

        // Silo A claims it and dies before recording an outcome: its lease runs out.
        var lost = Assert.Single(await store.ClaimAsync("silo-a", TimeSpan.FromMilliseconds(200), 10, 16, []));
        Assert.Equal(1, lost.Attempt);
        await Task.Delay(500);

        // Silo B takes it over: a send now is still the first attempt (before: the second, one step further along the
        // schedule, and one attempt fewer in all).
        var taken = Assert.Single(await store.ClaimAsync("silo-b", TimeSpan.FromSeconds(60), 10, 16, []));
        Assert.Equal(1, taken.Attempt);
        await store.CompleteAsync(taken, "silo-b", delivered: false, 500, null, TimeSpan.FromSeconds(5), gone: false);
        Assert.Equal((1, "pending"), await AttemptsAsync(dataSource, delivery));

        // Silo A's outcome arriving late is not its claim's any more: ignored.
        await store.CompleteAsync(lost, "silo-a", delivered: true, 204, null, null, gone: false);
        Assert.Equal((1, "pending"), await AttemptsAsync(dataSource, delivery));
    }

    [Fact]
    public async Task A_dispatcher_that_stops_while_sending_gives_its_claims_back_at_once_uncounted()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var database = await PostgresServer.Instance.CreateDatabaseAsync("hooks");
        await using var dataSource = NpgsqlDataSource.Create(database);
        var delivery = await DueDeliveryAsync(dataSource, new WebhookStore(dataSource), receiver.Url($"/hang/{Guid.NewGuid():N}"));

        using var silo = Dispatcher(database);
        await silo.StartAsync();
        await WaitUntilAsync(async () => await ClaimedByAsync(dataSource, delivery) is not null); // the send hangs in flight
        await silo.StopAsync();

        // Free for another silo now, not after the 60 s lease; no attempt used, no claim lost.
        Assert.Null(await ClaimedByAsync(dataSource, delivery));
        Assert.Equal((0, "pending"), await AttemptsAsync(dataSource, delivery));
        Assert.Equal(0, await ScalarAsync<int>(dataSource, "SELECT claims FROM webhook_delivery WHERE event_id = $1", delivery));
    }

    [Fact]
    public async Task A_delivery_whose_claims_keep_ending_with_their_silo_is_given_up_unsent()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var database = await PostgresServer.Instance.CreateDatabaseAsync("hooks");
        await using var dataSource = NpgsqlDataSource.Create(database);
        var path = $"/ok/{Guid.NewGuid():N}";
        var delivery = await DueDeliveryAsync(dataSource, new WebhookStore(dataSource), receiver.Url(path));
        // Claimed three times, each silo dead before an outcome (kill -9 while sending), the last lease run out.
        await LoseClaimsAsync(dataSource, delivery, WebhookDispatcher.MaxLostClaims);

        using var silo = Dispatcher(database);
        await silo.StartAsync();
        await WaitUntilAsync(async () => (await AttemptsAsync(dataSource, delivery)).Status == "failed");
        await silo.StopAsync();

        Assert.Empty(receiver.To(path));
        Assert.Equal((0, "failed"), await AttemptsAsync(dataSource, delivery));
        Assert.Contains("given up unsent", await ScalarAsync<string>(dataSource, "SELECT last_error FROM webhook_delivery WHERE event_id = $1", delivery));
    }

    [Fact]
    public async Task A_delivery_with_fewer_lost_claims_is_still_sent_and_its_first_answer_is_its_first_attempt()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var database = await PostgresServer.Instance.CreateDatabaseAsync("hooks");
        await using var dataSource = NpgsqlDataSource.Create(database);
        var path = $"/flaky/1/{Guid.NewGuid():N}";
        var delivery = await DueDeliveryAsync(dataSource, new WebhookStore(dataSource), receiver.Url(path));
        await LoseClaimsAsync(dataSource, delivery, WebhookDispatcher.MaxLostClaims - 1);

        using var silo = Dispatcher(database);
        await silo.StartAsync();
        await WaitUntilAsync(async () => (await AttemptsAsync(dataSource, delivery)).Attempts == 1);
        await silo.StopAsync();

        Assert.Single(receiver.To(path)); // answered 500: retried after the schedule's first wait, 5 s
        Assert.Equal((1, "pending"), await AttemptsAsync(dataSource, delivery));
        var wait = await ScalarAsync<double>(dataSource, "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM webhook_delivery WHERE event_id = $1", delivery);
        Assert.InRange(wait, 1, 5);
    }

    [Fact]
    public async Task A_delivery_to_a_host_left_out_of_the_allowed_hosts_is_given_up_unsent()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var database = await PostgresServer.Instance.CreateDatabaseAsync("hooks");
        await using var dataSource = NpgsqlDataSource.Create(database);
        var path = $"/ok/{Guid.NewGuid():N}";
        // Created (on 127.0.0.1) before the deployment restricted its targets.
        var delivery = await DueDeliveryAsync(dataSource, new WebhookStore(dataSource), receiver.Url(path));

        using var silo = Dispatcher(database, o => o.AllowedHosts = ["hooks.example.com"]);
        await silo.StartAsync();
        await WaitUntilAsync(async () => (await AttemptsAsync(dataSource, delivery)).Status == "failed");
        await silo.StopAsync();

        Assert.Empty(receiver.To(path));
        Assert.Contains("AllowedHosts", await ScalarAsync<string>(dataSource, "SELECT last_error FROM webhook_delivery WHERE event_id = $1", delivery));
    }

    [Fact]
    public async Task A_delivery_claimed_before_migration_0018_keeps_its_attempts_and_counts_the_claims_lost_after_it()
    {
        var database = await PostgresServer.Instance.CreateDatabaseAsync("hooks",
            SchemaMigrator.Files.TakeWhile(f => f != "billing/0018_webhook_delivery_claims.sql").ToArray());
        await using var dataSource = NpgsqlDataSource.Create(database);
        var delivery = await DueDeliveryAsync(dataSource, new WebhookStore(dataSource), "http://127.0.0.1:9/unused");
        // Two attempts before the upgrade, each counted when it was claimed.
        await ExecuteAsync(dataSource, "UPDATE webhook_delivery SET attempts = 2 WHERE event_id = $1", delivery);

        Assert.Equal(1, await SchemaMigrator.ApplyAsync(database, NullLogger.Instance));

        var store = new WebhookStore(dataSource);
        var first = Assert.Single(await store.ClaimAsync("silo-a", TimeSpan.FromMilliseconds(200), 10, 16, []));
        Assert.Equal((3, 0), (first.Attempt, first.LostClaims));
        await Task.Delay(500); // silo A died with it
        var second = Assert.Single(await store.ClaimAsync("silo-b", TimeSpan.FromSeconds(60), 10, 16, []));
        Assert.Equal((3, 1), (second.Attempt, second.LostClaims));
    }

    /// <summary>An enabled endpoint at <paramref name="url"/> with one delivery due now; answers the event's id.</summary>
    private static async Task<Guid> DueDeliveryAsync(NpgsqlDataSource dataSource, WebhookStore store, string url)
    {
        var (endpoint, _) = await store.CreateAsync(Guid.NewGuid(), url, ["balance.low"], "whsec_" + Convert.ToBase64String(new byte[24]));
        var eventId = Guid.NewGuid();
        await ExecuteAsync(dataSource, """
            INSERT INTO billing_event (id, type, scope, scope_id, data, created_at) VALUES ($1, 'balance.low', 'user', $2, '{"threshold":"5"}', now());
            """, eventId, Guid.NewGuid());
        await ExecuteAsync(dataSource, "INSERT INTO webhook_delivery (endpoint_id, event_id, event_created_at, next_attempt_at) VALUES ($1, $2, now(), now())",
            endpoint.Id, eventId);
        return eventId;
    }

    /// <summary>The delivery as <paramref name="claims"/> claims left it, each silo dead before an outcome, the last lease run out.</summary>
    private static Task LoseClaimsAsync(NpgsqlDataSource dataSource, Guid eventId, int claims) => ExecuteAsync(dataSource,
        "UPDATE webhook_delivery SET claims = $2, claimed_by = 'dead-silo', claimed_until = now() - interval '1 second' WHERE event_id = $1",
        eventId, claims);

    /// <summary>A silo's webhook dispatcher alone, on <paramref name="database"/>, polling fast.</summary>
    private static ServiceProvider Dispatcher(string database, Action<WebhookOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(_ => NpgsqlDataSource.Create(database));
        services.AddSingleton<WebhookStore>();
        services.AddOptions<WebhookOptions>().Configure(o =>
        {
            o.PollInterval = TimeSpan.FromMilliseconds(100);
            configure?.Invoke(o);
        });
        services.AddWebhookDispatcher();
        return services.BuildServiceProvider();
    }

    private static async Task<(int Attempts, string Status)> AttemptsAsync(NpgsqlDataSource dataSource, Guid eventId)
    {
        await using var command = dataSource.CreateCommand("SELECT attempts, status FROM webhook_delivery WHERE event_id = $1");
        command.Parameters.AddWithValue(eventId);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return (reader.GetInt32(0), reader.GetString(1));
    }

    private static async Task<string?> ClaimedByAsync(NpgsqlDataSource dataSource, Guid eventId) =>
        await ScalarAsync<string?>(dataSource, "SELECT claimed_by FROM webhook_delivery WHERE event_id = $1", eventId);

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource dataSource, string sql, params object[] parameters)
    {
        await using var command = dataSource.CreateCommand(sql);
        foreach (var parameter in parameters) command.Parameters.AddWithValue(parameter);
        var value = await command.ExecuteScalarAsync();
        return value is DBNull ? default! : (T)value!;
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql, params object[] parameters)
    {
        await using var command = dataSource.CreateCommand(sql);
        foreach (var parameter in parameters) command.Parameters.AddWithValue(parameter);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "not within 30 s");
            await Task.Delay(50);
        }
    }
}

/// <summary>Starts and stops the provider's hosted services (here: the dispatcher) as a host would.</summary>
internal static class HostedServices
{
    public static async Task StartAsync(this ServiceProvider provider)
    {
        foreach (var service in provider.GetServices<IHostedService>()) await service.StartAsync(CancellationToken.None);
    }

    public static async Task StopAsync(this ServiceProvider provider)
    {
        foreach (var service in provider.GetServices<IHostedService>()) await service.StopAsync(CancellationToken.None);
    }
}
