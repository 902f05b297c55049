using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Billing.Client;
using Billing.Hosting;
using Billing.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Orleans.Serialization;
using Xunit.Abstractions;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

/// <summary>Issue 9, the gateway's part: ids on a 503 (5), a detail in every problem (6), database faults as 503 (13).</summary>
[Collection(GatewayCollection.Name)]
public sealed class ReviewDefectTests(GatewayFixture fixture, ITestOutputHelper output)
{
    private readonly HttpClient http = fixture.Http;

    [Fact]
    public async Task ReviewDefect05_A_503_carries_the_generated_or_given_id_in_the_body_and_the_Idempotency_Key_header()
    {
        // A real gateway whose cluster is down (no silo ever joined): every call into the cluster fails, a 503.
        await using var down = await ClusterlessGateway.StartAsync(fixture.ConnectionString);
        var (project, user, model) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());

        var generated = await down.Http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 10, 10));
        var usageId = AssertRetryableWithId(generated, "usageId");

        var again = await down.Http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 10, 10));
        Assert.NotEqual(usageId, AssertRetryableWithId(again, "usageId")); // a new call, a new id

        var given = Guid.NewGuid();
        var personal = await down.Http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(),
            Json(new { modelId = model, inputTokens = 1, outputTokens = 1 }), new Dictionary<string, string> { ["Idempotency-Key"] = given.ToString() });
        Assert.Equal(given, AssertRetryableWithId(personal, "usageId"));

        var inBody = Guid.NewGuid();
        var personalInBody = await down.Http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(),
            Json(new { modelId = model, inputTokens = 1, outputTokens = 1, usageId = inBody }));
        Assert.Equal(inBody, AssertRetryableWithId(personalInBody, "usageId"));

        var topUp = await down.Http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), Json(new { amount = 5 }));
        AssertRetryableWithId(topUp, "creditId");

        var creditId = Guid.NewGuid();
        var projectTopUp = await down.Http.PostAsync($"/v1/projects/{project}/credits", Tokens.Admin(), Json(new { amount = 5, creditId }));
        Assert.Equal(creditId, AssertRetryableWithId(projectTopUp, "creditId"));
    }

    [Fact]
    public async Task ReviewDefect05_A_top_up_without_credit_id_answers_the_generated_one_and_a_retry_with_it_credits_once()
    {
        var user = await NewUserAsync(http);
        var first = await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), Json(new { amount = 5 }));
        first.ShouldBe(HttpStatusCode.OK);
        var creditId = first.Json.GetProperty("creditId").GetGuid();
        Assert.NotEqual(Guid.Empty, creditId);
        Assert.Equal(15m, first.Json.GetProperty("balance").GetDecimal());

        // The retry a caller makes after losing the answer: same id, nothing more credited.
        var retry = await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), Json(new { amount = 5, creditId }));
        retry.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(creditId, retry.Json.GetProperty("creditId").GetGuid());
        var byHeader = await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), Json(new { amount = 5 }),
            new Dictionary<string, string> { ["Idempotency-Key"] = creditId.ToString() });
        byHeader.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(15m, await BalanceAsync(http, "users", user));

        // The account body of the other routes is unchanged: creditId belongs to top-ups only.
        var account = await http.GetAsync($"/v1/users/{user}/billing", Tokens.Service());
        Assert.False(account.Json.TryGetProperty("creditId", out _), account.Body);
    }

    [Fact]
    public async Task ReviewDefect05_An_overloaded_account_answers_503_with_the_generated_id_and_a_retry_with_it_credits_once()
    {
        // A silo whose accounts queue one operation at most, and a gateway on it.
        var clusterId = $"ovl-{Guid.NewGuid():N}"[..16];
        // Connections of a pool of its own: none that another test's PostgreSQL restart may have left broken.
        var database = new NpgsqlConnectionStringBuilder(fixture.ConnectionString) { ApplicationName = clusterId }.ConnectionString;
        var silo = await GatewayFixture.StartSiloAsync(database, clusterId,
            s => s.Services.Configure<BillingLimits>(limits => limits.AccountQueue = 1));
        var port = PostgresServer.FreePort();
        var (gateway, gatewayHttp) = await BillingStack.StartGatewayAsync(new Uri($"http://127.0.0.1:{port}"),
            GatewayFixture.GatewayArgs(port, database, clusterId));
        try
        {
            var user = await NewUserAsync(gatewayHttp);
            var refused = new List<ApiResponse>();
            Task<ApiResponse> TopUp(string? accept = null) =>
                gatewayHttp.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), Json(new { amount = 1 }), accept is null ? null : Accepting(accept));
            Task<ApiResponse>[] queued;
            await using (var connection = new NpgsqlConnection(database))
            {
                // A slow database: the account's row is locked, so its first write waits and the next ones queue.
                await connection.OpenAsync();
                await using var transaction = await connection.BeginTransactionAsync();
                await using (var lockRow = new NpgsqlCommand("UPDATE user_billing SET balance = balance WHERE \"user\" = $1", connection, transaction))
                {
                    lockRow.Parameters.Add(new NpgsqlParameter { Value = user });
                    await lockRow.ExecuteNonQueryAsync();
                }

                var stuck = TopUp();
                await LockWaits.UntilBlockedByAsync(database, connection); // the stuck one is the write in flight
                // Half of them from a client that accepts no JSON: 3 of the 4 are refused, so both kinds are.
                queued = Enumerable.Range(0, 4).Select(i => TopUp(i % 2 == 0 ? null : "text/html")).ToArray();
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
                while (queued.Count(t => t.IsCompleted) < 3 && DateTime.UtcNow < deadline) await Task.Delay(20);
                refused.AddRange(queued.Where(t => t.IsCompleted).Select(t => t.Result));
                Assert.False(stuck.IsCompleted);
                await transaction.RollbackAsync();
                (await stuck).ShouldBe(HttpStatusCode.OK);
            }

            // Each refusal names the id it generated, as a fault's 503 does: body, header, detail, Retry-After.
            Assert.Equal(3, refused.Count);
            var ids = refused.Select(r =>
            {
                var id = AssertRetryableWithId(r, "creditId");
                Assert.Equal("overloaded", r.Json.GetProperty("code").GetString());
                Assert.NotNull(r.Message.Headers.RetryAfter);
                return id;
            }).ToArray();
            Assert.Equal(3, ids.Distinct().Count());
            Assert.All(await Task.WhenAll(queued.Where(t => !refused.Contains(t.Result))), r => r.ShouldBe(HttpStatusCode.OK));
            Assert.Equal(12m, await BalanceAsync(gatewayHttp, "users", user)); // 10 + the stuck one + the queued one

            // Retried with their ids, each is credited once; a second retry changes nothing.
            foreach (var id in ids.Concat(ids))
                (await gatewayHttp.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), Json(new { amount = 1, creditId = id }))).ShouldBe(HttpStatusCode.OK);
            Assert.Equal(15m, await BalanceAsync(gatewayHttp, "users", user));
        }
        finally
        {
            await BillingStack.StopAsync(gateway, gatewayHttp, silo);
        }
    }

    [Fact]
    public async Task ReviewDefect06_Problems_written_by_ASP_NET_Core_itself_have_type_title_status_and_detail()
    {
        var id = Guid.NewGuid();
        var usage = UsageBody(id, id, id, 1, 1);
        var cases = new List<(string Case, HttpStatusCode Expected, Func<Task<ApiResponse>> Send)>
        {
            ("no token", HttpStatusCode.Unauthorized, () => http.GetAsync($"/v1/users/{id}/billing", null)),
            ("invalid token", HttpStatusCode.Unauthorized, () => http.GetAsync($"/v1/users/{id}/billing", "not-a-jwt")),
            ("no token, unknown route", HttpStatusCode.Unauthorized, () => http.GetAsync("/v1/nothing-here", null)),
            ("service token on an admin route", HttpStatusCode.Forbidden,
                () => http.PutAsync($"/v1/models/{id}/pricing", Tokens.Service(), "{\"inputPricePerMillion\":1,\"outputPricePerMillion\":1}")),
            ("plain user on a service route", HttpStatusCode.Forbidden, () => http.PostAsync("/v1/usage", Tokens.User(id), usage)),
            ("unknown route", HttpStatusCode.NotFound, () => http.GetAsync("/v1/nothing-here", Tokens.Service())),
            ("wrong method", HttpStatusCode.MethodNotAllowed, () => http.SendAsync(HttpMethod.Delete, "/v1/usage", Tokens.Service())),
            ("body too large", HttpStatusCode.RequestEntityTooLarge,
                () => http.PostAsync("/v1/usage", Tokens.Service(), $"{{\"pad\":\"{new string('x', 70 * 1024)}\"}}")),
            ("not JSON", HttpStatusCode.UnsupportedMediaType, () => SendTextAsync("/v1/usage", Tokens.Service(), usage)),
        };

        foreach (var (name, expected, send) in cases)
        {
            var response = await send();
            Assert.True(response.Status == expected, $"{name}: expected {(int)expected}, got {response}");
            response.ShouldBe(expected);
            Assert.True(response.Json.TryGetProperty("detail", out var detail) && !string.IsNullOrWhiteSpace(detail.GetString()),
                $"{name}: problem without detail: {response}");
            Assert.True(response.Json.TryGetProperty("code", out var code) && !string.IsNullOrWhiteSpace(code.GetString()),
                $"{name}: problem without code: {response}");
        }

        // The details say what to do, not just the status again.
        var forbidden = await http.PutAsync($"/v1/models/{id}/pricing", Tokens.Service(), "{\"inputPricePerMillion\":1,\"outputPricePerMillion\":1}");
        Assert.Contains("admin", forbidden.Json.GetProperty("detail").GetString());
        var missing = await http.GetAsync($"/v1/users/{id}/billing", null);
        Assert.Contains("Bearer", missing.Json.GetProperty("detail").GetString());
        var method = await http.SendAsync(HttpMethod.Delete, "/v1/usage", Tokens.Service());
        Assert.Contains("POST", method.Json.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task ReviewDefect13_A_PostgreSQL_restart_under_load_answers_200_or_503_with_the_usage_id_never_500()
    {
        // Not a silent pass on a server of someone else's (BILLING_TEST_DB), which this test must not restart.
        Assert.True(PostgresServer.Instance.DataDirectory is not null,
            "This test restarts PostgreSQL: run it on the test kit's own throwaway server (without BILLING_TEST_DB).");

        const decimal cost = 0.003m; // 1,000 input tokens at 3.00 per million
        var user = await NewUserAsync(http);
        (await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), Json(new { amount = 990 }))).ShouldBe(HttpStatusCode.OK);
        var model = await NewModelAsync(http, "3.00", "15.00");
        (await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 1000, outputTokens = 0 })))
            .ShouldBe(HttpStatusCode.OK); // warm: account and pricing grains active, connections pooled

        var answers = new ConcurrentQueue<(Guid? Sent, ApiResponse Response, int Restarts)>();
        var restarts = 0;
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 6).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                // Half the callers send their own usage id, half let the gateway generate one.
                Guid? sent = i % 2 == 0 ? Guid.NewGuid() : null;
                var body = sent is null
                    ? Json(new { modelId = model, inputTokens = 1000, outputTokens = 0 })
                    : Json(new { modelId = model, inputTokens = 1000, outputTokens = 0, usageId = sent });
                var sentAfter = Volatile.Read(ref restarts);
                answers.Enqueue((sent, await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), body), sentAfter));
            }
        })).ToArray();

        // A restart fails the calls whose statements were in flight; one that found none in flight proves nothing
        // about 503s, so restart again (at most three times). After each, keep the load on until the cluster has
        // recovered: 20 successes sent after that restart, or give up after a minute.
        bool RecoveredFrom(int restart) => answers.Count(a => a.Restarts == restart && a.Response.Code == 200) >= 20;
        var recovered = true;
        do
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            await Task.Run(PostgresServer.Instance.RestartImmediate);
            var restart = Interlocked.Increment(ref restarts);
            var deadline = DateTime.UtcNow.AddMinutes(1);
            while (!(recovered = RecoveredFrom(restart)) && DateTime.UtcNow < deadline) await Task.Delay(200);
        }
        while (recovered && restarts < 3 && !answers.Any(a => a.Response.Code == 503));

        await stop.CancelAsync();
        await Task.WhenAll(workers);
        // The restarts left broken idle connections in this process's pools (one per connection string, shared by
        // every silo and gateway the tests start here); a later test's new silo took one and failed to start (seen in
        // CI). Measured above with them; dropped for whoever comes next.
        NpgsqlConnection.ClearAllPools();

        var all = answers.ToArray();
        output.WriteLine($"{all.Length} answers after {restarts} restart(s): {string.Join(", ", all.GroupBy(a => a.Response.Code).OrderBy(g => g.Key).Select(g => $"{g.Count()} x {g.Key}"))}");
        var bad = all.Where(a => a.Response.Code is not (200 or 402 or 503)).Select(a => a.Response.ToString()).ToList();
        Assert.True(bad.Count == 0, $"{bad.Count} of {all.Length} answers were not 200/402/503, e.g. {string.Join(" | ", bad.Take(3))}");
        Assert.True(recovered, "billing did not recover within a minute of a restart");

        var unavailable = all.Where(a => a.Response.Code == 503).ToList();
        Assert.NotEmpty(unavailable); // a restart broke the connections of the statements in flight: some calls must have failed
        var retryIds = new List<Guid>();
        foreach (var (sent, response, _) in unavailable)
        {
            var id = AssertRetryableWithId(response, "usageId");
            if (sent is { } own) Assert.Equal(own, id);
            retryIds.Add(id);
        }

        // The id a 503 handed out is good for the retry: each is charged exactly once, whatever the first try did.
        foreach (var id in retryIds)
        {
            var retry = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(),
                Json(new { modelId = model, inputTokens = 1000, outputTokens = 0, usageId = id }));
            retry.ShouldBe(HttpStatusCode.OK);
            Assert.Equal(id, retry.Json.GetProperty("usageId").GetGuid());
        }

        var charged = all.Where(a => a.Response.Code == 200).Select(a => a.Response.Json.GetProperty("usageId").GetGuid()).Concat(retryIds).Distinct().Count();
        Assert.Equal(1000m - cost * (charged + 1), await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task ReviewDefect13_Database_faults_become_serialisable_faults_retryable_or_not()
    {
        // Real faults from the real server: a connection that cannot be made, a terminated backend, a data error.
        var refused = new NpgsqlConnectionStringBuilder(fixture.ConnectionString) { Port = PostgresServer.FreePort(), Timeout = 2 }.ConnectionString;
        var unreachable = await Assert.ThrowsAnyAsync<NpgsqlException>(async () =>
        {
            await using var connection = new NpgsqlConnection(refused);
            await connection.OpenAsync();
        });
        var terminated = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync("SELECT pg_terminate_backend(pg_backend_pid())"));
        var dataError = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync("SELECT 1 / 0"));
        var checkViolation = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(
            "CREATE TEMP TABLE t (amount numeric CHECK (amount >= 0)); INSERT INTO t VALUES (-1)"));

        Assert.IsType<BillingUnavailableException>(BillingFaults.Translate(unreachable));
        Assert.IsType<BillingUnavailableException>(BillingFaults.Translate(terminated));
        Assert.IsType<BillingUnavailableException>(BillingFaults.Translate(new TimeoutException()));
        Assert.IsType<BillingUnavailableException>(BillingFaults.Translate(new InvalidOperationException("wrapped", unreachable)));
        Assert.IsType<BillingOperationFailedException>(BillingFaults.Translate(dataError));
        Assert.IsType<BillingOperationFailedException>(BillingFaults.Translate(checkViolation));
        Assert.Null(BillingFaults.Translate(new ArgumentException("not a database fault")));
        Assert.Null(BillingFaults.Translate(new BillingUnavailableException()));

        // The translated faults survive Orleans serialisation (what crosses to the gateway and to agent grains) ...
        await using var services = new ServiceCollection().AddSerializer(b => b.AddAssembly(typeof(BillingUnavailableException).Assembly)).BuildServiceProvider();
        var serializer = services.GetRequiredService<Serializer>();
        foreach (var fault in new[] { BillingFaults.Translate(terminated)!, BillingFaults.Translate(checkViolation)! })
        {
            var copy = serializer.Deserialize<Exception>(serializer.SerializeToArray<Exception>(fault));
            Assert.IsType(fault.GetType(), copy);
            Assert.Equal(fault.Message, copy.Message);
            Assert.Null(copy.InnerException);
            Assert.DoesNotContain("CHECK", copy.Message, StringComparison.OrdinalIgnoreCase); // no internals beyond the SQLSTATE
        }

        async Task ExecuteAsync(string sql)
        {
            await using var connection = new NpgsqlConnection(fixture.ConnectionString + ";Pooling=false");
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    [Fact]
    public async Task ReviewDefect_An_outage_answered_to_a_client_that_accepts_no_json_keeps_the_problem_and_the_id_to_retry_with()
    {
        // ASP.NET Core's problem writer declines an Accept with no JSON type: the 503 went out bare, without the id.
        await using var down = await ClusterlessGateway.StartAsync(fixture.ConnectionString);
        var (project, user, model) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        foreach (var accept in NoJsonAccepts)
        {
            var charge = await down.Http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 10, 10), Accepting(accept));
            AssertRetryableWithId(charge, "usageId");
            Assert.NotNull(charge.Message.Headers.RetryAfter);
            AssertSameProblemAsForJson(await down.Http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, 10, 10)), charge);

            var read = await down.Http.SendAsync(HttpMethod.Get, $"/v1/users/{user}/billing", Tokens.Service(), headers: Accepting(accept));
            read.ShouldBe(HttpStatusCode.ServiceUnavailable);
            Assert.NotNull(read.Message.Headers.RetryAfter);
            AssertSameProblemAsForJson(await down.Http.GetAsync($"/v1/users/{user}/billing", Tokens.Service()), read);
        }
    }

    [Fact]
    public async Task ReviewDefect_Problems_answered_to_a_client_that_accepts_no_json_are_the_problems_a_json_client_gets()
    {
        var user = await NewUserAsync(http);
        var unknown = Guid.NewGuid();
        var cases = new List<(string Case, HttpStatusCode Expected, Func<IDictionary<string, string>?, Task<ApiResponse>> Send)>
        {
            ("no token", HttpStatusCode.Unauthorized, h => http.SendAsync(HttpMethod.Get, $"/v1/users/{user}/billing", null, headers: h)),
            ("service token on an admin route", HttpStatusCode.Forbidden,
                h => http.SendAsync(HttpMethod.Put, $"/v1/models/{unknown}/pricing", Tokens.Service(), "{\"inputPricePerMillion\":1,\"outputPricePerMillion\":1}", h)),
            ("unreadable body", HttpStatusCode.BadRequest, h => http.PostAsync("/v1/usage", Tokens.Service(), "{\"inputTokens\":", h)),
            ("refused by the endpoint", HttpStatusCode.BadRequest,
                h => http.SendAsync(HttpMethod.Get, $"/v1/usage/summary?scope=nope&scopeId={user}", Tokens.Service(), headers: h)),
            ("refused by billing", HttpStatusCode.NotFound, h => http.SendAsync(HttpMethod.Get, $"/v1/users/{unknown}/billing", Tokens.Service(), headers: h)),
            ("unknown route", HttpStatusCode.NotFound, h => http.SendAsync(HttpMethod.Get, "/v1/nothing-here", Tokens.Service(), headers: h)),
            ("wrong method", HttpStatusCode.MethodNotAllowed, h => http.SendAsync(HttpMethod.Delete, "/v1/usage", Tokens.Service(), headers: h)),
        };

        var failures = new List<string>(); // every path at once: which of them writes its problem its own way
        foreach (var (name, expected, send) in cases)
        {
            var forJson = await send(null);
            Assert.True(forJson.Status == expected, $"{name}: expected {(int)expected}, got {forJson}");
            foreach (var accept in NoJsonAccepts)
            {
                var response = await send(Accepting(accept));
                try
                {
                    AssertSameProblemAsForJson(forJson, response);
                }
                catch (Exception e) when (e is Xunit.Sdk.XunitException or JsonException)
                {
                    failures.Add($"{name}, Accept: {accept}: {response.ContentType ?? "no Content-Type"} {response.ToString().Trim()}; {e.Message}");
                }
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    private static readonly string[] NoJsonAccepts = ["text/html", "text/plain", "text/html, application/xhtml+xml, application/xml;q=0.9"];

    private static Dictionary<string, string> Accepting(string accept) => new() { ["Accept"] = accept };

    /// <summary>The same problem (status, members, code) and the same retry headers as the default Accept gets.</summary>
    private static void AssertSameProblemAsForJson(ApiResponse forJson, ApiResponse response)
    {
        forJson.ShouldBe(forJson.Status);
        response.ShouldBe(forJson.Status);
        Assert.Equal("application/problem+json", forJson.ContentType);
        Assert.Equal("application/problem+json", response.ContentType);
        static string[] Members(ApiResponse r) => r.Json.EnumerateObject().Select(m => m.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(Members(forJson), Members(response));
        Assert.Equal(forJson.Json.GetProperty("code").GetString(), response.Json.GetProperty("code").GetString());
        static string[] Headers(ApiResponse r) => r.Message.Headers.Concat(r.Message.Content.Headers).Select(h => h.Key)
            .Where(h => h is "Retry-After" or "Idempotency-Key" or "WWW-Authenticate" or "Allow").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(Headers(forJson), Headers(response));
    }

    /// <summary>A 503 problem with the id in the body member and the Idempotency-Key header; returns the id.</summary>
    private static Guid AssertRetryableWithId(ApiResponse response, string member)
    {
        response.ShouldBe(HttpStatusCode.ServiceUnavailable);
        Assert.True(response.Json.TryGetProperty(member, out var inBody), $"503 without {member}: {response}");
        var id = inBody.GetGuid();
        Assert.NotEqual(Guid.Empty, id);
        Assert.True(response.Message.Headers.TryGetValues("Idempotency-Key", out var header), $"503 without an Idempotency-Key header: {response}");
        Assert.Equal(id.ToString(), Assert.Single(header));
        Assert.Contains(id.ToString(), response.Json.GetProperty("detail").GetString());
        return id;
    }

    private async Task<ApiResponse> SendTextAsync(string path, string token, string text)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(text, Encoding.UTF8, "text/plain") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await http.SendAsync(request);
        return new ApiResponse(response.StatusCode, await response.Content.ReadAsStringAsync(), response.Content.Headers.ContentType?.MediaType, response);
    }

    /// <summary>A gateway pointed at a cluster no silo ever joined: live, and every call into the cluster fails.</summary>
    private sealed class ClusterlessGateway : IAsyncDisposable
    {
        private readonly WebApplication app;
        private readonly CancellationTokenSource stop = new();
        private readonly Task starting;

        private ClusterlessGateway(WebApplication app, int port)
        {
            this.app = app;
            starting = app.StartAsync(stop.Token); // keeps retrying to connect; Kestrel answers meanwhile
            Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
        }

        public HttpClient Http { get; }

        public static async Task<ClusterlessGateway> StartAsync(string connectionString)
        {
            var port = PostgresServer.FreePort();
            var gateway = new ClusterlessGateway(Program.BuildGateway(GatewayFixture.GatewayArgs(port, connectionString, $"down-{Guid.NewGuid():N}")), port);
            for (var i = 0; i < 200; i++)
            {
                try
                {
                    if ((await gateway.Http.GetAsync("/health/live", null)).Status == HttpStatusCode.OK) return gateway;
                }
                catch (HttpRequestException)
                {
                }

                await Task.Delay(100);
            }

            await gateway.DisposeAsync();
            throw new TimeoutException("The cluster-less gateway did not start listening.");
        }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await stop.CancelAsync();
            try
            {
                await starting.WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (OperationCanceledException)
            {
            }

            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
            stop.Dispose();
        }
    }
}
