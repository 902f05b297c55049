using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Billing.Client;
using Billing.Client.Hosting;
using Billing.Hosting;
using Billing.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using Orleans.Configuration;

namespace Billing.Console.Tests;

[CollectionDefinition(Name)]
public sealed class ConsoleCollection : ICollectionFixture<ConsoleFixture>
{
    public const string Name = "console";
}

/// <summary>
/// Real parts, as the gateway tests start them: a throwaway PostgreSQL with the schema, one silo with the billing
/// grains (ADO.NET clustering on it), the gateway on Kestrel on a free loopback port; plus Debian's chromium driven
/// by Playwright (no browser download: <c>BILLING_CHROMIUM</c>, default <c>/usr/bin/chromium</c>).
/// </summary>
public sealed class ConsoleFixture : IAsyncLifetime
{
    public const string SigningKey = "console-tests-signing-key-0123456789-abcdefghijklmnop";

    private IHost? silo;
    private WebApplication? gateway;
    private IPlaywright? playwright;

    public string ConnectionString { get; private set; } = "";

    public Uri BaseAddress { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Where the screenshots of the main views go: the test output folder's <c>screenshots/</c>.</summary>
    public static string ScreenshotDir { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");

    public static string ChromiumPath => Environment.GetEnvironmentVariable("BILLING_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    public async Task InitializeAsync()
    {
        Assert.True(File.Exists(ChromiumPath), $"{ChromiumPath} is missing: install Debian's chromium (scripts/prereqs.sh does).");
        Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, "console", "lib", "chart.umd.min.js")), "The console's chart library was not built into the output.");
        Directory.CreateDirectory(ScreenshotDir);

        ConnectionString = await PostgresServer.Instance.CreateDatabaseAsync("console");
        var clusterId = $"con-{Guid.NewGuid():N}"[..16];
        silo = await BillingStack.StartSiloAsync(ConnectionString, clusterId);
        var port = PostgresServer.FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{port}");
        (gateway, Http) = await BillingStack.StartGatewayAsync(BaseAddress, BillingStack.GatewayArgs(port, ConnectionString, clusterId, SigningKey));

        playwright = await Playwright.CreateAsync();
        Browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            // Root in a container: no user namespaces for chromium's sandbox.
            Args = ["--no-sandbox", "--disable-dev-shm-usage"],
        });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        playwright?.Dispose();
        await BillingStack.StopAsync(gateway, Http, silo);
    }

    /// <summary>A fresh browser page (own storage) on the console.</summary>
    /// <param name="beforeLoad">Called with the page before it loads the console (to watch its first requests).</param>
    public async Task<IPage> OpenConsoleAsync(Action<IPage>? beforeLoad = null)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = BaseAddress.ToString(), ViewportSize = new() { Width = 1280, Height = 900 } });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(15_000);
        beforeLoad?.Invoke(page);
        page.PageError += (_, error) => pageErrors.Enqueue($"{page.Url}: {error}");
        await page.GotoAsync("/console/");
        return page;
    }

    private readonly System.Collections.Concurrent.ConcurrentQueue<string> pageErrors = new();

    /// <summary>How many uncaught errors the console's pages have thrown so far (a mark for <see cref="PageErrorsSince"/>).</summary>
    public int PageErrorCount => pageErrors.Count;

    /// <summary>The uncaught errors thrown by the console's pages after <paramref name="mark"/>.</summary>
    public IReadOnlyList<string> PageErrorsSince(int mark) => pageErrors.Skip(mark).ToArray();
}

public static class Tokens
{
    private static readonly AuthOptions Auth = new() { SigningKey = ConsoleFixture.SigningKey };

    public static string Admin(Guid? sub = null) => TokenCommand.Mint(Auth, sub ?? Guid.NewGuid(), "admin", TimeSpan.FromMinutes(30));

    public static string Service(Guid? sub = null) => TokenCommand.Mint(Auth, sub ?? Guid.NewGuid(), "service", TimeSpan.FromMinutes(30));

    public static string User(Guid sub) => TokenCommand.Mint(Auth, sub, null, TimeSpan.FromMinutes(30));

    /// <summary>A well-formed, unexpired token the gateway rejects (signed with another key): every call is a 401.</summary>
    public static string Rejected(Guid sub) =>
        TokenCommand.Mint(new AuthOptions { SigningKey = "another-signing-key-0123456789-abcdefghijklmnopqrst" }, sub, "admin", TimeSpan.FromMinutes(30));
}

/// <summary>The API as the tests use it to set up accounts and to read what the page must show (raw JSON text kept).</summary>
public static class Api
{
    public static async Task<(HttpStatusCode Status, string Body)> SendAsync(this HttpClient http, HttpMethod method, string path, string token, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public static async Task<System.Text.Json.JsonElement> OkAsync(this HttpClient http, HttpMethod method, string path, string token, string? json = null)
    {
        var (status, body) = await http.SendAsync(method, path, token, json);
        Assert.True((int)status is >= 200 and < 300, $"{method} {path}: {(int)status} {body}");
        return System.Text.Json.JsonDocument.Parse(body).RootElement;
    }
}
