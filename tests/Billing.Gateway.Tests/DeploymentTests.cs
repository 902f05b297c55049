using System.Diagnostics;
using System.Net;
using Billing.Client;
using Billing.Client.Hosting;
using Billing.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Billing.Gateway.Tests;

/// <summary>
/// The gateway's production behaviour over real HTTP against the fixture's silo: rate limits per token subject (429
/// problem+json with Retry-After), one trace from the HTTP request through the grain calls to the ledger's SQL.
/// Each test starts a gateway of its own with the settings under test.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class DeploymentTests(GatewayFixture fixture)
{
    [Fact]
    public async Task A_subject_over_its_rate_gets_429_problem_with_Retry_After_and_other_subjects_and_health_are_untouched()
    {
        await using var gateway = await StartGatewayAsync(["--RateLimit:PermitsPerSecond=1", "--RateLimit:Burst=3", "--RateLimit:ServicePermitsPerSecond=1", "--RateLimit:ServiceBurst=5"]);
        var user = await Scenario.NewUserAsync(fixture.Http);
        var token = Tokens.User(user);

        var answers = new List<ApiResponse>();
        for (var i = 0; i < 5; i++) answers.Add(await gateway.Http.GetAsync($"/v1/users/{user}/billing", token));
        Assert.All(answers.Take(3), a => a.ShouldBe(HttpStatusCode.OK));
        var refused = answers.Last();
        refused.ShouldBe(HttpStatusCode.TooManyRequests);
        Assert.Equal("application/problem+json", refused.ContentType);
        Assert.Equal("rate_limited", refused.Json.GetProperty("code").GetString());
        Assert.Equal(429, refused.Json.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(refused.Json.GetProperty("detail").GetString()));
        var retryAfter = refused.Message.Headers.RetryAfter?.Delta;
        Assert.True(retryAfter is { TotalSeconds: >= 1 }, $"Retry-After: {refused.Message.Headers.RetryAfter}");

        // Another user's token has its own bucket; health and OpenAPI are never limited.
        var other = await Scenario.NewUserAsync(fixture.Http);
        (await gateway.Http.GetAsync($"/v1/users/{other}/billing", Tokens.User(other))).ShouldBe(HttpStatusCode.OK);
        for (var i = 0; i < 10; i++) (await gateway.Http.GetAsync("/health/live", null)).ShouldBe(HttpStatusCode.OK);

        // A service token has the larger bucket: 5 at once, then 429; a refused usage is not charged.
        var (project, creator) = await Scenario.NewProjectAsync(fixture.Http);
        var model = await Scenario.NewModelAsync(fixture.Http);
        var service = Tokens.Service();
        var usages = new List<(Guid Id, ApiResponse Answer)>();
        for (var i = 0; i < 7; i++)
        {
            var id = Guid.NewGuid();
            usages.Add((id, await gateway.Http.PostAsync("/v1/usage", service, Scenario.UsageBody(project, creator, model, 1000, 0, id))));
        }

        Assert.All(usages.Take(5), u => u.Answer.ShouldBe(HttpStatusCode.OK));
        Assert.Equal(HttpStatusCode.TooManyRequests, usages.Last().Answer.Status);
        var history = await fixture.Http.GetAsync($"/v1/projects/{project}/history", Tokens.Service());
        history.ShouldBe(HttpStatusCode.OK);
        var text = history.Body;
        Assert.All(usages.Where(u => u.Answer.Status == HttpStatusCode.OK), u => Assert.Contains(u.Id.ToString(), text));
        Assert.All(usages.Where(u => u.Answer.Status == HttpStatusCode.TooManyRequests), u => Assert.DoesNotContain(u.Id.ToString(), text));
        await LedgerInvariants.AssertHoldAsync(fixture.ConnectionString, new LedgerScope([creator], [project]));
    }

    [Fact]
    public async Task Rate_limiting_is_on_by_default_and_off_in_Development()
    {
        await using var production = Program.BuildGateway(GatewayFixture.GatewayArgs(PostgresServer.FreePort(), fixture.ConnectionString, fixture.ClusterId, environment: "Production"));
        Assert.True(production.Services.GetRequiredService<IOptions<RateLimitOptions>>().Value.Enabled);
        await using var development = Program.BuildGateway(GatewayFixture.GatewayArgs(PostgresServer.FreePort(), fixture.ConnectionString, fixture.ClusterId, environment: "Development"));
        Assert.False(development.Services.GetRequiredService<IOptions<RateLimitOptions>>().Value.Enabled);
    }

    /// <summary>
    /// One usage, one trace: the gateway's HTTP server span, the Orleans client's call, the grain calls in the silo
    /// (usage grain → account grain) and the PostgreSQL statements, all with the same trace id and each span's parent
    /// in the trace. The gateway's own tracer provider (Tracing:Enabled) gets an in-memory exporter; the silo side is
    /// collected by a tracer provider listening to the silo's sources, as the silo's OTLP export would.
    /// </summary>
    [Fact]
    public async Task A_usage_is_one_trace_from_the_HTTP_request_through_the_grain_calls_to_its_SQL()
    {
        var gatewaySpans = new List<Activity>();
        var siloSpans = new List<Activity>();
        using var siloTracer = Sdk.CreateTracerProviderBuilder()
            .AddSource(Billing.Diagnostics.BillingTracing.SiloSources)
            .AddInMemoryExporter(siloSpans)
            .Build();
        await using var gateway = await StartGatewayAsync(["--Tracing:Enabled=true"],
            builder => builder.Services.ConfigureOpenTelemetryTracerProvider(traces => traces.AddInMemoryExporter(gatewaySpans)));

        var (project, creator) = await Scenario.NewProjectAsync(fixture.Http);
        var model = await Scenario.NewModelAsync(fixture.Http);
        var usageId = Guid.NewGuid();
        (await gateway.Http.PostAsync("/v1/usage", Tokens.Service(), Scenario.UsageBody(project, creator, model, 1234, 567, usageId))).ShouldBe(HttpStatusCode.OK);

        var deadline = DateTime.UtcNow.AddSeconds(10);
        Activity? server = null;
        Activity[] trace = [];
        while (DateTime.UtcNow < deadline)
        {
            lock (gatewaySpans) server = gatewaySpans.FirstOrDefault(a => a.Kind == ActivityKind.Server && a.DisplayName.Contains("/v1/usage"));
            if (server is not null)
            {
                Activity[] all;
                lock (gatewaySpans) lock (siloSpans) all = gatewaySpans.Concat(siloSpans).ToArray();
                trace = all.Where(a => a.TraceId == server.TraceId).GroupBy(a => a.SpanId).Select(g => g.First()).ToArray();
                if (trace.Any(a => a.Source.Name == "Npgsql")) break;
            }

            await Task.Delay(100);
        }

        Assert.NotNull(server);
        var names = string.Join("\n", trace.Select(a => $"{a.Source.Name} {a.Kind} {a.DisplayName} parent={a.ParentSpanId}"));
        Assert.Contains(trace, a => a.Source.Name.StartsWith("Microsoft.Orleans") && a.Kind == ActivityKind.Client && a.DisplayName.Contains("IUsageGrain"));
        Assert.Contains(trace, a => a.Source.Name.StartsWith("Microsoft.Orleans") && a.Kind == ActivityKind.Server && a.DisplayName.Contains("IUsageGrain"));
        Assert.Contains(trace, a => a.Source.Name.StartsWith("Microsoft.Orleans") && a.Kind == ActivityKind.Server && a.DisplayName.Contains("IAccountGrain"));
        Assert.Contains(trace, a => a.Source.Name == Billing.Diagnostics.BillingTracing.SourceName && a.DisplayName == "ledger commit");
        Assert.True(trace.Any(a => a.Source.Name == "Npgsql"), $"no SQL span in the usage's trace:\n{names}");

        // Linked: every span but the HTTP request's has its parent in this trace.
        var spanIds = trace.Select(a => a.SpanId).ToHashSet();
        Assert.All(trace.Where(a => a != server && a.SpanId != server.SpanId), a => Assert.True(spanIds.Contains(a.ParentSpanId), $"{a.Source.Name} {a.DisplayName} has a parent outside the trace:\n{names}"));
    }

    private async Task<StartedGateway> StartGatewayAsync(string[] extraArgs, Action<WebApplicationBuilder>? configure = null)
    {
        var port = PostgresServer.FreePort();
        var app = Program.BuildGateway([.. GatewayFixture.GatewayArgs(port, fixture.ConnectionString, fixture.ClusterId), .. extraArgs], configure);
        await app.StartAsync().WaitAsync(TimeSpan.FromMinutes(2));
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while ((await http.GetAsync("/health/ready", null)).Status != HttpStatusCode.OK)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The gateway did not become ready.");
            await Task.Delay(250);
        }

        return new StartedGateway(app, http);
    }

    private sealed record StartedGateway(WebApplication App, HttpClient Http) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await App.StopAsync(CancellationToken.None);
            await App.DisposeAsync();
        }
    }
}
