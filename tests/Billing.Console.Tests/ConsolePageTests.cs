using System.Net;
using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Billing.Console.Tests;

/// <summary>The console in a real browser (Debian's chromium) against a real gateway, silo and PostgreSQL.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class ConsolePageTests(ConsoleFixture fixture) : IAsyncLifetime
{
    private readonly HttpClient http = fixture.Http;

    private int pageErrorMark;

    public Task InitializeAsync()
    {
        pageErrorMark = fixture.PageErrorCount;
        return Task.CompletedTask;
    }

    /// <summary>Every test also fails when the page threw: an error the test's assertions did not happen to see.</summary>
    public Task DisposeAsync()
    {
        Assert.Empty(fixture.PageErrorsSince(pageErrorMark));
        return Task.CompletedTask;
    }

    private static ILocator T(IPage page, string testId) => page.Locator($"[data-testid=\"{testId}\"]");

    private static async Task SignInAsync(IPage page, string token)
    {
        await page.FillAsync("#token", token);
        await page.ClickAsync("#signin-submit");
        await Expect(page.Locator("#main")).ToBeVisibleAsync();
    }

    private static async Task LookUpAsync(IPage page, string kind, Guid id)
    {
        await page.SelectOptionAsync("#kind", kind);
        await page.FillAsync("#account-id", id.ToString());
        await page.ClickAsync("#lookup");
    }

    private static Task ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ConsoleFixture.ScreenshotDir, name), FullPage = true });

    private async Task<(Guid Project, Guid User)> NewProjectAsync()
    {
        var user = Guid.NewGuid();
        var project = Guid.NewGuid();
        await http.OkAsync(HttpMethod.Post, $"/v1/users/{user}/billing", Tokens.Service());
        await http.OkAsync(HttpMethod.Post, $"/v1/projects/{project}/billing", Tokens.Service(), $"{{\"creatorId\":\"{user}\"}}");
        return (project, user);
    }

    private async Task<Guid> NewModelAsync(string input, string output)
    {
        var model = Guid.NewGuid();
        await http.OkAsync(HttpMethod.Put, $"/v1/models/{model}/pricing", Tokens.Admin(), $"{{\"inputPricePerMillion\":{input},\"outputPricePerMillion\":{output},\"currency\":\"USD\"}}");
        return model;
    }

    private Task<JsonElement> UseAsync(Guid project, Guid user, Guid model, long input, long output) =>
        http.OkAsync(HttpMethod.Post, "/v1/usage", Tokens.Service(),
            $"{{\"projectId\":\"{project}\",\"userId\":\"{user}\",\"modelId\":\"{model}\",\"inputTokens\":{input},\"outputTokens\":{output}}}");

    [Fact]
    public async Task Opening_the_console_signing_in_and_looking_up_an_account_makes_no_request_that_fails()
    {
        var (project, _) = await NewProjectAsync();
        var failed = new System.Collections.Concurrent.ConcurrentQueue<string>();

        var page = await fixture.OpenConsoleAsync(p => p.Response += (_, response) =>
        {
            if (response.Status >= 400) failed.Enqueue($"{response.Status} {response.Request.Method} {response.Url}");
        });
        await SignInAsync(page, Tokens.Service());
        await LookUpAsync(page, "project", project);
        await Expect(T(page, "balance")).ToHaveTextAsync("20.0000 USD");
        await page.WaitForLoadStateAsync(LoadState.NetworkIdle);

        Assert.Empty(failed);
        // A browser asks for /favicon.ico by itself unless the page names its icon (headless Chromium does not ask),
        // and every unknown path is a 401 without a token: the console names an inline one.
        await Expect(page.Locator("link[rel=icon]")).ToHaveAttributeAsync("href", "data:,");
    }

    [Fact]
    public async Task Sign_in_look_up_a_project_and_see_its_exact_balance_history_and_paging()
    {
        var (project, user) = await NewProjectAsync();
        var model = await NewModelAsync("0.37", "1.111");
        for (var i = 0; i < 22; i++) await UseAsync(project, user, model, 1234 + i, 567);
        var account = await http.OkAsync(HttpMethod.Get, $"/v1/projects/{project}/billing", Tokens.Service());
        var balanceText = account.GetProperty("balance").GetRawText();
        Assert.True(balanceText.Length > 10, $"a balance with many digits: {balanceText}"); // a double would show them too; the point is they are the API's

        var page = await fixture.OpenConsoleAsync();
        await Expect(page.Locator("#signin")).ToBeVisibleAsync();
        await SignInAsync(page, Tokens.Service());
        await LookUpAsync(page, "project", project);

        await Expect(T(page, "balance")).ToHaveTextAsync($"{balanceText} USD");
        await Expect(T(page, "history-rows").Locator("tr")).ToHaveCountAsync(20);
        await Expect(T(page, "history-rows").Locator("tr").First).ToContainTextAsync("ai_usage");
        await ScreenshotAsync(page, "account.png");

        // Paging: 23 rows (22 usages + the first-project credit): the second page has 3, ending with the credit.
        await page.ClickAsync("#history-older");
        await Expect(T(page, "history-rows").Locator("tr")).ToHaveCountAsync(3);
        await Expect(T(page, "history-rows").Locator("tr").Last).ToContainTextAsync("first_project_credit");
        await Expect(page.Locator("#history-older")).ToBeDisabledAsync();
        await page.ClickAsync("#history-newer");
        await Expect(T(page, "history-rows").Locator("tr")).ToHaveCountAsync(20);

        // Holds and grants: shown when the API has them; otherwise the API's own answer is shown, never swallowed.
        foreach (var panel in new[] { "holds", "grants" })
        {
            var (status, _) = await http.SendAsync(HttpMethod.Get, $"/v1/projects/{project}/{panel}", Tokens.Service());
            if (status == HttpStatusCode.OK) await Expect(T(page, $"{panel}-error")).ToBeEmptyAsync();
            else await Expect(T(page, $"{panel}-error")).ToContainTextAsync($"{(int)status} ");
        }
    }

    [Fact]
    public async Task The_charts_totals_match_the_usage_summary_exactly()
    {
        var (project, user) = await NewProjectAsync();
        var cheap = await NewModelAsync("3.00", "15.00");
        var odd = await NewModelAsync("0.37", "1.111");
        foreach (var (model, input, output) in new[] { (cheap, 1234L, 567L), (odd, 999L, 7L), (cheap, 1L, 1L), (odd, 123456L, 7890L), (odd, 3L, 0L) })
            await UseAsync(project, user, model, input, output);
        var summary = await http.OkAsync(HttpMethod.Get, $"/v1/usage/summary?scope=project&scopeId={project}&groupBy=model", Tokens.Service());
        var totalText = summary.GetProperty("total").GetProperty("cost").GetRawText();

        var page = await fixture.OpenConsoleAsync();
        await SignInAsync(page, Tokens.Service());
        await LookUpAsync(page, "project", project);

        await Expect(T(page, "spend-total")).ToHaveTextAsync($"{totalText} USD");
        await Expect(T(page, "spend-requests")).ToHaveTextAsync("5");
        // The chart's own data: one dataset per model, and its exact values add up to the summary's total.
        var chartSum = await T(page, "spend-total").GetAttributeAsync("data-chart-sum");
        Assert.Equal(decimal.Parse(totalText, System.Globalization.CultureInfo.InvariantCulture), decimal.Parse(chartSum!, System.Globalization.CultureInfo.InvariantCulture));
        var datasets = await page.EvaluateAsync<int>("() => Chart.getChart(document.getElementById('spend-chart')).data.datasets.length");
        Assert.Equal(2, datasets);
        var days = await page.EvaluateAsync<int>("() => Chart.getChart(document.getElementById('spend-chart')).data.labels.length");
        Assert.Equal(30, days);
        // Per model: the table's cost equals the summary's bucket sum for that model.
        foreach (var model in new[] { cheap, odd })
        {
            var expected = summary.GetProperty("buckets").EnumerateArray().Where(b => b.GetProperty("modelId").GetGuid() == model)
                .Sum(b => b.GetProperty("cost").GetDecimal());
            var row = T(page, "spend-models").Locator("tr", new() { HasText = model.ToString() });
            var shown = (await row.Locator("td").Nth(2).TextContentAsync())!.Replace(" USD", "");
            Assert.Equal(expected, decimal.Parse(shown, System.Globalization.CultureInfo.InvariantCulture));
        }

        await page.Locator("#spend").ScrollIntoViewIfNeededAsync();
        await ScreenshotAsync(page, "spend.png");
    }

    [Fact]
    public async Task An_admin_top_up_changes_the_balance_on_the_page()
    {
        var user = Guid.NewGuid();
        await http.OkAsync(HttpMethod.Post, $"/v1/users/{user}/billing", Tokens.Service());
        var page = await fixture.OpenConsoleAsync();
        await SignInAsync(page, Tokens.Admin());
        await Expect(page.Locator("#admin")).ToBeVisibleAsync();
        await LookUpAsync(page, "user", user);
        await Expect(T(page, "balance")).ToHaveTextAsync("10.0000 USD");

        await page.FillAsync("#topup-amount", "5.25");
        await page.ClickAsync("#topup-submit");
        await Expect(T(page, "balance")).ToHaveTextAsync("15.2500 USD");
        await Expect(T(page, "admin-message")).ToContainTextAsync("15.2500 USD");
        var history = await http.OkAsync(HttpMethod.Get, $"/v1/users/{user}/history", Tokens.Service());
        Assert.Equal("5.25", history.GetProperty("items")[0].GetProperty("amount").GetRawText());

        // Bad input is refused with the reason shown, and nothing changes.
        await page.FillAsync("#topup-amount", "-3");
        await page.ClickAsync("#topup-submit");
        await Expect(T(page, "admin-error")).ToContainTextAsync("decimal number");
        await Expect(T(page, "balance")).ToHaveTextAsync("15.2500 USD");

        // A price and a plan, through the same page.
        var model = Guid.NewGuid();
        await page.FillAsync("#price-model", model.ToString());
        await page.FillAsync("#price-input", "2.50");
        await page.FillAsync("#price-output", "10.125");
        await page.ClickAsync("#price-submit");
        await Expect(T(page, "admin-message")).ToContainTextAsync("2.50 / 10.125 USD");
        var pricing = await http.OkAsync(HttpMethod.Get, $"/v1/models/{model}/pricing", Tokens.Service());
        Assert.Equal("10.125", pricing.GetProperty("current").GetProperty("outputPricePerMillion").GetRawText());

        await page.CheckAsync("#plan-pro");
        await page.FillAsync("#plan-quota", "50.00");
        await page.ClickAsync("#plan-submit");
        await Expect(T(page, "plan")).ToContainTextAsync("pro, quota 50.00 USD");
        await Expect(T(page, "available")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^(65\\.2500 USD|—)$"));

        // Back to pay as you go, with the quota field still showing 50.00: the plan changes (a pro quota is not sent).
        await page.UncheckAsync("#plan-pro");
        await page.ClickAsync("#plan-submit");
        await Expect(T(page, "plan")).ToHaveTextAsync("pay as you go");
        await Expect(T(page, "admin-message")).ToContainTextAsync("Plan changed.");

        // A refusal of the API is shown as the API said it.
        await page.FillAsync("#price-model", Guid.NewGuid().ToString());
        await page.FillAsync("#price-input", "0");
        await page.FillAsync("#price-output", "0");
        await page.ClickAsync("#price-submit");
        await Expect(T(page, "admin-error")).ToContainTextAsync("400 ");
        await page.Locator("#admin").ScrollIntoViewIfNeededAsync();
        await ScreenshotAsync(page, "admin.png");
    }

    [Fact]
    public async Task ReviewDefect_A_top_up_whose_answer_was_lost_is_credited_once_when_submitted_again()
    {
        var user = Guid.NewGuid();
        await http.OkAsync(HttpMethod.Post, $"/v1/users/{user}/billing", Tokens.Service());
        var page = await fixture.OpenConsoleAsync();
        await SignInAsync(page, Tokens.Admin());
        await LookUpAsync(page, "user", user);
        await Expect(T(page, "balance")).ToHaveTextAsync("10.0000 USD");

        // The first submit reaches the API and is credited, but the page gets a 503 instead of the answer.
        var lost = 0;
        await page.RouteAsync("**/credits", async route =>
        {
            var answer = await route.FetchAsync();
            Assert.Equal(200, answer.Status);
            Interlocked.Increment(ref lost);
            await route.FulfillAsync(new() { Status = 503, ContentType = "application/problem+json", Body = "{\"title\":\"Service unavailable\",\"status\":503}" });
        });
        await page.FillAsync("#topup-amount", "5");
        await page.ClickAsync("#topup-submit");
        await Expect(T(page, "admin-error")).ToContainTextAsync("submit again");
        Assert.Equal(1, lost);
        await page.UnrouteAllAsync();

        await page.ClickAsync("#topup-submit");
        await Expect(T(page, "admin-message")).ToContainTextAsync("15.0000 USD");
        var history = await http.OkAsync(HttpMethod.Get, $"/v1/users/{user}/history", Tokens.Service());
        Assert.Equal(2, history.GetProperty("items").GetArrayLength()); // the signup credit and one top-up

        // A new top-up afterwards is a new credit.
        await page.ClickAsync("#topup-submit");
        await Expect(T(page, "admin-message")).ToContainTextAsync("20.0000 USD");
    }

    [Fact]
    public async Task A_402_shows_in_the_billing_errors_and_can_be_resolved()
    {
        var (project, user) = await NewProjectAsync();
        var model = await NewModelAsync("1000000", "0"); // 1.00 per input token
        var (status, body) = await http.SendAsync(HttpMethod.Post, "/v1/usage", Tokens.Service(),
            $"{{\"projectId\":\"{project}\",\"userId\":\"{user}\",\"modelId\":\"{model}\",\"inputTokens\":25,\"outputTokens\":0}}");
        Assert.Equal(HttpStatusCode.PaymentRequired, status);
        var errorId = JsonDocument.Parse(body).RootElement.GetProperty("billingErrorId").GetGuid();

        var page = await fixture.OpenConsoleAsync();
        await SignInAsync(page, Tokens.Service());
        await LookUpAsync(page, "project", project);
        var row = T(page, "errors-rows").Locator("tr");
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row).ToContainTextAsync("insufficient_balance");
        await Expect(row).ToContainTextAsync("open");
        await ScreenshotAsync(page, "billing-errors.png");

        await row.Locator($"button[data-error-id=\"{errorId}\"]").ClickAsync();
        await Expect(T(page, "errors-rows").Locator("tr")).ToHaveCountAsync(0);   // the open list is empty now
        await page.SelectOptionAsync("#errors-filter", "");
        await Expect(T(page, "errors-rows").Locator("tr")).ToContainTextAsync("resolved");
        var stored = await http.OkAsync(HttpMethod.Get, $"/v1/billing-errors?scope=project&scopeId={project}", Tokens.Service());
        Assert.True(stored.GetProperty("items")[0].GetProperty("resolved").GetBoolean());
    }

    [Fact]
    public async Task A_plain_user_sees_their_own_account_but_not_another_users()
    {
        var (_, me) = await NewProjectAsync();
        var (otherProject, other) = await NewProjectAsync();
        var page = await fixture.OpenConsoleAsync();
        await SignInAsync(page, Tokens.User(me));
        await Expect(page.Locator("#admin")).ToBeHiddenAsync();

        await page.ClickAsync("#mine");
        await Expect(T(page, "balance")).ToHaveTextAsync("10.0000 USD");

        await LookUpAsync(page, "user", other);
        await Expect(T(page, "lookup-error")).ToContainTextAsync("403 Forbidden");
        await Expect(page.Locator("#account-views")).ToBeHiddenAsync();
        await LookUpAsync(page, "project", otherProject);
        await Expect(T(page, "lookup-error")).ToContainTextAsync("403 Forbidden");
        await Expect(page.Locator("#account-views")).ToBeHiddenAsync();
        await ScreenshotAsync(page, "forbidden.png");
    }

    [Fact]
    public async Task A_rejected_token_asks_to_sign_in_again()
    {
        var page = await fixture.OpenConsoleAsync();
        await SignInAsync(page, Tokens.Rejected(Guid.NewGuid()));
        await page.ClickAsync("#mine");
        await Expect(page.Locator("#signin")).ToBeVisibleAsync();
        await Expect(T(page, "signin-message")).ToContainTextAsync("401");
        await Expect(T(page, "signin-message")).ToContainTextAsync("Sign in again");
        await Expect(page.Locator("#main")).ToBeHiddenAsync();

        // Not a token at all: refused before any call.
        await page.FillAsync("#token", "hello");
        await page.ClickAsync("#signin-submit");
        await Expect(T(page, "signin-message")).ToContainTextAsync("not a JWT");
    }
}
