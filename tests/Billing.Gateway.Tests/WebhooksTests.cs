using System.Net;
using System.Text.Json;
using Billing.Client;
using Billing.Testing;
using Billing.Webhooks;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

/// <summary>
/// A gateway and silo of their own (so that no other test's events reach these endpoints), with a retry schedule in
/// seconds, and a real webhook receiver on Kestrel.
/// </summary>
public sealed class WebhooksFixture : IAsyncLifetime
{
    private IHost? silo;
    private WebApplication? gateway;

    public HttpClient Http { get; private set; } = null!;

    public WebhookReceiver Receiver { get; private set; } = null!;

    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        ConnectionString = await PostgresServer.Instance.CreateDatabaseAsync("webhooks");
        var clusterId = $"wh-{Guid.NewGuid():N}"[..16];
        silo = await GatewayFixture.StartSiloAsync(ConnectionString, clusterId, s => s.Services.Configure<WebhookOptions>(o =>
        {
            o.RetrySchedule = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)];
            o.PollInterval = TimeSpan.FromMilliseconds(200);
            o.Timeout = TimeSpan.FromSeconds(5);
            o.Lease = TimeSpan.FromSeconds(10);
            o.AllowedHosts = ["127.0.0.1", "*.example.com"]; // the receiver's, and a pattern (A_deployment_that_restricts_targets_…)
        }));
        var port = PostgresServer.FreePort();
        (gateway, Http) = await BillingStack.StartGatewayAsync(new Uri($"http://127.0.0.1:{port}"), GatewayFixture.GatewayArgs(port, ConnectionString, clusterId));

        Receiver = await WebhookReceiver.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (Receiver is not null) await Receiver.DisposeAsync();
        await BillingStack.StopAsync(gateway, Http, silo);
    }
}

public sealed class WebhooksTests(WebhooksFixture fixture) : IClassFixture<WebhooksFixture>
{
    private readonly HttpClient http = fixture.Http;
    private readonly WebhookReceiver receiver = fixture.Receiver;

    [Fact]
    public async Task Webhook_endpoints_are_admin_only_and_the_secret_is_shown_once()
    {
        var path = $"/ok/{Guid.NewGuid():N}";
        var body = Json(new { url = receiver.Url(path), events = new[] { "balance.low" } });
        (await http.PostAsync("/v1/webhooks", Tokens.Service(), body)).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync("/v1/webhooks", Tokens.Service())).ShouldBe(HttpStatusCode.Forbidden);

        var created = await http.PostAsync("/v1/webhooks", Tokens.Admin(), body);
        created.ShouldBe(HttpStatusCode.Created);
        var id = created.Json.GetProperty("id").GetGuid();
        Assert.StartsWith("whsec_", created.Json.GetProperty("secret").GetString());
        Assert.Equal(32, Convert.FromBase64String(created.Json.GetProperty("secret").GetString()!["whsec_".Length..]).Length);
        Assert.True(created.Json.GetProperty("enabled").GetBoolean());
        Assert.Equal(["balance.low"], created.Json.GetProperty("events").EnumerateArray().Select(e => e.GetString()!).ToArray());

        var list = await http.GetAsync("/v1/webhooks", Tokens.Admin());
        list.ShouldBe(HttpStatusCode.OK);
        var listed = list.Json.GetProperty("items").EnumerateArray().Single(i => i.GetProperty("id").GetGuid() == id);
        Assert.False(listed.TryGetProperty("secret", out _));

        (await http.SendAsync(HttpMethod.Delete, $"/v1/webhooks/{id}", Tokens.Admin())).ShouldBe(HttpStatusCode.NoContent);
        (await http.SendAsync(HttpMethod.Delete, $"/v1/webhooks/{id}", Tokens.Admin())).ShouldBe(HttpStatusCode.NotFound);
        (await http.SendAsync(HttpMethod.Delete, "/v1/webhooks/not-a-uuid", Tokens.Admin())).ShouldBe(HttpStatusCode.BadRequest);

        (await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { url = "ftp://example.com/x", events = new[] { "balance.low" } }))).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { url = "/relative", events = new[] { "balance.low" } }))).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { url = receiver.Url(path), events = new[] { "balance.sideways" } }))).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { url = receiver.Url(path), events = Array.Empty<string>() }))).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { url = receiver.Url(path) }))).ShouldBe(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task ReviewDefect_A_webhook_created_again_with_its_id_is_the_same_endpoint_with_its_secret_not_a_second_one()
    {
        // Before, a retried creation (its answer lost) made a second endpoint, and every event went out twice.
        var id = Guid.NewGuid();
        var url = receiver.Url($"/ok/{Guid.NewGuid():N}");
        var body = Json(new { url, events = new[] { "balance.low", "hold.expired" } });
        var key = new Dictionary<string, string> { ["Idempotency-Key"] = id.ToString() };

        var first = await http.PostAsync("/v1/webhooks", Tokens.Admin(), body, key);
        var again = await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { id, url, events = new[] { "hold.expired", "balance.low" } }));
        var other = await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { id, url, events = new[] { "balance.low" } }));

        first.ShouldBe(HttpStatusCode.Created);
        again.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(id, first.Json.GetProperty("id").GetGuid());
        Assert.Equal(first.Json.GetProperty("secret").GetString(), again.Json.GetProperty("secret").GetString());
        other.ShouldBe(HttpStatusCode.Conflict);
        Assert.Equal("webhook_conflict", other.Json.GetProperty("code").GetString());
        var list = await http.GetAsync("/v1/webhooks", Tokens.Admin());
        Assert.Single(list.Json.GetProperty("items").EnumerateArray(), i => i.GetProperty("url").GetString() == url);
        (await http.SendAsync(HttpMethod.Delete, $"/v1/webhooks/{id}", Tokens.Admin())).ShouldBe(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task ReviewDefect_A_null_event_type_does_not_let_an_unknown_one_through()
    {
        var url = receiver.Url($"/null/{Guid.NewGuid():N}");
        foreach (var events in new[] { "[null,\"balance.sideways\"]", "[null]", "[\"balance.low\",null]", "[\"\"]" })
        {
            var refused = await http.PostAsync("/v1/webhooks", Tokens.Admin(), $"{{\"url\":\"{url}\",\"events\":{events}}}");
            Assert.True(refused.Status == HttpStatusCode.BadRequest, $"events {events}: {refused}");
            refused.ShouldBe(HttpStatusCode.BadRequest);
        }

        var listed = (await http.GetAsync("/v1/webhooks", Tokens.Admin())).Json.GetProperty("items").EnumerateArray();
        Assert.DoesNotContain(listed, i => i.GetProperty("url").GetString() == url);
    }

    [Fact]
    public async Task Balance_low_is_delivered_signed_with_one_webhook_id_and_retried_until_the_receiver_accepts()
    {
        var path = $"/flaky/2/{Guid.NewGuid():N}";
        await RegisterAsync(path, "balance.low", "balance.recovered");
        var user = await NewUserAsync(http);
        var model = await NewDollarPerTokenModelAsync(http);
        var alerts = await http.PutAsync($"/v1/users/{user}/alerts", Tokens.Service(), "{\"thresholds\":[5.00,2.00]}");
        alerts.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("[5.00,2.00]", alerts.RawMember("thresholds"));
        Assert.Equal("[]", alerts.RawMember("crossed"));

        (await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 6, outputTokens = 0 }))).ShouldBe(HttpStatusCode.OK);

        var attempts = await WaitAsync(() => receiver.To(path).ToArray(), a => a.Any(r => r.Answered == 204), TimeSpan.FromSeconds(30));
        Assert.All(attempts, a => Assert.True(a.SignatureValid, $"bad signature: {a.Signature}"));
        Assert.Equal([500, 500, 204], attempts.Select(a => a.Answered).ToArray()); // failed twice, retried, accepted
        Assert.Single(attempts.Select(a => a.Id).Distinct());                      // the same webhook-id on every attempt
        Assert.All(attempts, a => Assert.Matches("^v1,[A-Za-z0-9+/]+=*$", a.Signature));

        var delivered = JsonDocument.Parse(attempts[^1].Body).RootElement;
        Assert.Equal(attempts[0].Id, delivered.GetProperty("id").GetString());
        Assert.Equal("balance.low", delivered.GetProperty("type").GetString());
        var data = delivered.GetProperty("data");
        Assert.Equal(user, data.GetProperty("scopeId").GetGuid());
        Assert.Equal("user", data.GetProperty("scope").GetString());
        Assert.Equal("5.00", data.GetProperty("threshold").GetRawText());
        Assert.Equal(4.0000m, data.GetProperty("available").GetDecimal());

        var crossed = await http.GetAsync($"/v1/users/{user}/alerts", Tokens.User(user));
        crossed.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("[5.00]", crossed.RawMember("crossed"));

        // The same event is in the outbox, under the same id.
        var events = await http.GetAsync($"/v1/events?scope=user&scopeId={user}&type=balance.low", Tokens.Service());
        events.ShouldBe(HttpStatusCode.OK);
        var item = Assert.Single(events.Json.GetProperty("items").EnumerateArray().ToArray());
        Assert.Equal(attempts[0].Id, item.GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_410_answer_disables_the_endpoint_and_nothing_more_is_sent_to_it()
    {
        var path = $"/gone/{Guid.NewGuid():N}";
        var id = await RegisterAsync(path, "billing_error.created");
        var user = await NewUserAsync(http);
        var model = await NewDollarPerTokenModelAsync(http);

        (await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 50, outputTokens = 0 }))).ShouldBe(HttpStatusCode.PaymentRequired);
        await WaitAsync(() => receiver.To(path).ToArray(), a => a.Length > 0, TimeSpan.FromSeconds(30));
        await WaitAsync(async () => (await http.GetAsync("/v1/webhooks", Tokens.Admin())).Json.GetProperty("items").EnumerateArray()
            .Single(i => i.GetProperty("id").GetGuid() == id).GetProperty("enabled").GetBoolean(), enabled => !enabled, TimeSpan.FromSeconds(10));

        (await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 60, outputTokens = 0 }))).ShouldBe(HttpStatusCode.PaymentRequired);
        await Task.Delay(TimeSpan.FromSeconds(3)); // several dispatch rounds and retry delays
        Assert.Single(receiver.To(path));
    }

    [Fact]
    public async Task ReviewDefect_A_receiver_that_never_answers_does_not_hold_back_deliveries_to_other_endpoints()
    {
        // Endpoint A accepts the connection and never answers (each attempt lasts the fixture's 5 s timeout); B is healthy.
        var hanging = await RegisterAsync($"/hang/{Guid.NewGuid():N}", "billing_error.created");
        var healthyPath = $"/ok/{Guid.NewGuid():N}";
        var healthy = await RegisterAsync(healthyPath, "billing_error.created");
        try
        {
            var user = await NewUserAsync(http);
            var model = await NewDollarPerTokenModelAsync(http);
            const int refusals = 100;
            var started = DateTime.UtcNow;
            for (var i = 0; i < refusals; i++)
            {
                (await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 50, outputTokens = 0 })))
                    .ShouldBe(HttpStatusCode.PaymentRequired);
            }

            // Each refusal is one billing_error.created; both endpoints have a delivery of each.
            var events = await http.GetAsync($"/v1/events?scope=user&scopeId={user}&type=billing_error.created&limit=500", Tokens.Service());
            events.ShouldBe(HttpStatusCode.OK);
            var expected = events.Json.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("id").GetString()!).ToHashSet();
            Assert.Equal(refusals, expected.Count);

            var within = TimeSpan.FromSeconds(20);
            string[] delivered;
            do
            {
                delivered = receiver.To(healthyPath).Where(r => r.Answered == 204).Select(r => r.Id).Where(expected.Contains).Distinct().ToArray();
                if (delivered.Length == refusals) break;
                await Task.Delay(100);
            }
            while (DateTime.UtcNow - started < within);

            Assert.True(delivered.Length == refusals,
                $"the healthy endpoint received {delivered.Length} of {refusals} events within {within.TotalSeconds:0} s of the first refusal, held back by the endpoint that never answers");
            await Task.Delay(TimeSpan.FromSeconds(1)); // a second copy of any of them would have arrived by now
            var copies = receiver.To(healthyPath).GroupBy(r => r.Id).Where(g => g.Count() > 1).Select(g => g.Key).ToArray();
            Assert.True(copies.Length == 0, $"{copies.Length} events reached the healthy endpoint more than once: {string.Join(", ", copies.Take(5))}");
            Assert.Equal(refusals, receiver.To(healthyPath).Count());
        }
        finally
        {
            // The hanging endpoint's retries would only slow this class's other tests.
            await http.SendAsync(HttpMethod.Delete, $"/v1/webhooks/{hanging}", Tokens.Admin());
            await http.SendAsync(HttpMethod.Delete, $"/v1/webhooks/{healthy}", Tokens.Admin());
        }
    }

    [Fact]
    public async Task A_deployment_that_restricts_webhook_targets_refuses_other_hosts_at_creation()
    {
        // Billing:Webhooks:AllowedHosts = 127.0.0.1, *.example.com in this fixture (API.md: a deployment setting, off by default).
        var refused = await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { url = "http://10.0.0.7/hooks", events = new[] { "balance.low" } }));
        refused.ShouldBe(HttpStatusCode.BadRequest);
        Assert.Contains("AllowedHosts", refused.Json.GetProperty("detail").GetString());
        (await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { url = "https://example.com.evil.test/x", events = new[] { "balance.low" } }))).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { url = "https://example.com/x", events = new[] { "balance.low" } }))).ShouldBe(HttpStatusCode.BadRequest);

        var allowed = await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { url = "https://hooks.example.com/billing", events = new[] { "balance.low" } }));
        allowed.ShouldBe(HttpStatusCode.Created);
        (await http.SendAsync(HttpMethod.Delete, $"/v1/webhooks/{allowed.Json.GetProperty("id").GetString()}", Tokens.Admin())).ShouldBe(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task Alerts_and_events_routes_check_their_input_and_roles()
    {
        var (project, creator) = await NewProjectAsync(http);
        (await http.PutAsync($"/v1/projects/{project}/alerts", Tokens.User(creator), "{\"thresholds\":[1]}")).ShouldBe(HttpStatusCode.Forbidden);
        (await http.PutAsync($"/v1/projects/{project}/alerts", Tokens.Service(), "{\"thresholds\":[1,2,3,4,5,6,7,8,9,10,11]}")).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PutAsync($"/v1/projects/{project}/alerts", Tokens.Service(), "{\"thresholds\":[0]}")).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PutAsync($"/v1/projects/{project}/alerts", Tokens.Service(), "{}")).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PutAsync($"/v1/projects/{Guid.NewGuid()}/alerts", Tokens.Service(), "{\"thresholds\":[1]}")).ShouldBe(HttpStatusCode.NotFound);
        var set = await http.PutAsync($"/v1/projects/{project}/alerts", Tokens.Service(), "{\"thresholds\":[25.00,10.00]}");
        set.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("[25.00]", set.RawMember("crossed")); // available is 20.0000
        (await http.GetAsync($"/v1/projects/{project}/alerts", Tokens.User(creator))).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync($"/v1/projects/{project}/alerts", Tokens.User(Guid.NewGuid()))).ShouldBe(HttpStatusCode.Forbidden);

        (await http.GetAsync("/v1/events", Tokens.User(creator))).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync("/v1/events?limit=0", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync("/v1/events?limit=501", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync("/v1/events?after=x", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync("/v1/events?scope=team", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync("/v1/events?scopeId=nope", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync("/v1/events?type=nope", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        var page = await http.GetAsync($"/v1/events?scope=project&scopeId={project}", Tokens.Service());
        page.ShouldBe(HttpStatusCode.OK);
        Assert.Empty(page.Json.GetProperty("items").EnumerateArray());
        Assert.False(string.IsNullOrEmpty(page.Json.GetProperty("nextCursor").GetString()));
    }

    private async Task<Guid> RegisterAsync(string path, params string[] events)
    {
        var created = await http.PostAsync("/v1/webhooks", Tokens.Admin(), Json(new { url = receiver.Url(path), events }));
        created.ShouldBe(HttpStatusCode.Created);
        receiver.Trust(path, created.Json.GetProperty("secret").GetString()!);
        return created.Json.GetProperty("id").GetGuid();
    }

    private static Task<T> WaitAsync<T>(Func<T> read, Func<T, bool> done, TimeSpan within) => WaitAsync(() => Task.FromResult(read()), done, within);

    private static async Task<T> WaitAsync<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var value = await read();
            if (done(value)) return value;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Not done within {within}: {value}");
            await Task.Delay(100);
        }
    }
}
