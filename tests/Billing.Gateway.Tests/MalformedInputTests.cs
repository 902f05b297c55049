using System.Net;
using System.Text;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

/// <summary>Whatever the body, the answer is a 2xx or a 4xx of API.md: never a 5xx, never a hang, nothing recorded changed.</summary>
[Collection(GatewayCollection.Name)]
public sealed class MalformedInputTests(GatewayFixture fixture)
{
    private const int BodiesPerRoute = 30;
    private readonly HttpClient http = fixture.Http;

    public static TheoryData<string> BodyRoutes() => new()
    {
        "POST projects/billing", "POST usage", "POST users/usage", "POST balance-checks", "PUT pricing",
        "POST users/credits", "POST projects/credits", "PUT users/plan", "PUT projects/plan",
    };

    [Theory]
    [MemberData(nameof(BodyRoutes))]
    public async Task Thirty_random_malformed_bodies_never_yield_a_5xx_nor_change_a_balance(string route)
    {
        var (project, user) = await NewProjectAsync(http);
        var model = await NewModelAsync(http);
        (string method, string path, string valid) = route switch
        {
            "POST projects/billing" => ("POST", $"/v1/projects/{Guid.NewGuid()}/billing", Json(new { creatorId = user })),
            "POST usage" => ("POST", "/v1/usage", UsageBody(project, user, model, 1200, 350)),
            "POST users/usage" => ("POST", $"/v1/users/{user}/usage", Json(new { modelId = model, inputTokens = 1200, outputTokens = 350 })),
            "POST balance-checks" => ("POST", "/v1/balance-checks",
                Json(new { projectId = project, userId = user, modelId = model, estimatedInputTokens = 5000, estimatedOutputTokens = 2000 })),
            "PUT pricing" => ("PUT", $"/v1/models/{Guid.NewGuid()}/pricing", "{\"inputPricePerMillion\":3.00,\"outputPricePerMillion\":15.00,\"currency\":\"USD\"}"),
            "POST users/credits" => ("POST", $"/v1/users/{user}/credits", "{\"amount\":5.00,\"reason\":\"top_up\"}"),
            "POST projects/credits" => ("POST", $"/v1/projects/{project}/credits", "{\"amount\":5.00,\"reason\":\"top_up\"}"),
            "PUT users/plan" => ("PUT", $"/v1/users/{user}/plan", "{\"isPro\":true,\"monthlyQuota\":50.00}"),
            "PUT projects/plan" => ("PUT", $"/v1/projects/{project}/plan", "{\"isPro\":true,\"monthlyQuota\":50.00}"),
            _ => throw new ArgumentOutOfRangeException(nameof(route)),
        };

        var random = new Random(20261125 + route.Length * 31 + route[^1]);
        var bodies = Enumerable.Range(0, BodiesPerRoute).Select(i => Malformed(valid, random, i)).ToArray();
        foreach (var body in bodies)
        {
            var projectBefore = await BalanceAsync(http, "projects", project);
            var userBefore = await BalanceAsync(http, "users", user);
            using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new ByteArrayContent(body) };
            request.Content!.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Tokens.Admin());
            using var response = await http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var shown = Encoding.UTF8.GetString(body);
            Assert.True((int)response.StatusCode < 500, $"{method} {path} with body [{shown}] gave {(int)response.StatusCode} {text}");
            Assert.DoesNotContain("   at ", text);
            if (!response.IsSuccessStatusCode)
            {
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.Equal(projectBefore, await BalanceAsync(http, "projects", project));
                Assert.Equal(userBefore, await BalanceAsync(http, "users", user));
            }
        }
    }

    /// <summary>A deterministic malformation of a valid body (seeded per route).</summary>
    private static byte[] Malformed(string valid, Random random, int index)
    {
        string Replace(string pattern, string replacement)
        {
            var m = System.Text.RegularExpressions.Regex.Matches(valid, pattern);
            if (m.Count == 0) return valid + "}";
            var pick = m[random.Next(m.Count)];
            return valid[..pick.Index] + replacement + valid[(pick.Index + pick.Length)..];
        }

        string RandomValue() => random.Next(14) switch
        {
            0 => "null",
            1 => "\"\"",
            2 => "-1",
            3 => "1.5",
            4 => "1e400",
            5 => "-0.0000000000000000000000000001",
            6 => "79228162514264337593543950336",
            7 => "\"" + Guid.NewGuid() + "\"",
            8 => "[]",
            9 => "{}",
            10 => "true",
            11 => "\"12\"",
            12 => "\"\\u0000\"",
            _ => "9223372036854775808",
        };

        return (index % 15) switch
        {
            0 => Encoding.UTF8.GetBytes(valid[..random.Next(valid.Length)]), // truncated
            1 => Encoding.UTF8.GetBytes(Replace(@":\s*(""[^""]*""|[-0-9.eE]+|true|false|null)", ":" + RandomValue())), // a value of the wrong kind
            2 => Encoding.UTF8.GetBytes(Replace(@"""[a-zA-Z]+""\s*:\s*(""[^""]*""|[-0-9.eE]+|true|false|null),?", "")), // a member missing
            3 => Encoding.UTF8.GetBytes(new string('[', 40 + random.Next(100)) + new string(']', 40)), // too deep
            4 => Enumerable.Range(0, random.Next(1, 64)).Select(_ => (byte)random.Next(256)).ToArray(), // noise
            5 => Encoding.UTF8.GetBytes(valid.Replace("\"", "'")), // single quotes
            6 => Encoding.UTF8.GetBytes(valid.TrimEnd('}') + ",}"), // trailing comma
            7 => Encoding.UTF8.GetBytes(valid.Insert(1, "\"inputTokens\":1,\"inputTokens\":-2,")), // duplicate members
            8 => Encoding.UTF8.GetBytes(random.Next(4) switch { 0 => "", 1 => "null", 2 => "[]", _ => "\"text\"" }), // not an object
            9 => Encoding.UTF8.GetBytes(Replace(@"[0-9a-f]{8}-[0-9a-f]{4}", "zzzzzzzz-zzzz")), // a malformed id
            10 => [.. Encoding.UTF8.GetBytes(valid[..^1]), 0xC3, 0x28, (byte)'}'], // invalid UTF-8
            11 => Encoding.UTF8.GetBytes(Replace(@"[0-9]+(\.[0-9]+)?(?=[,}])", RandomValue())), // a number made strange
            12 => Encoding.UTF8.GetBytes("/*c*/" + valid), // a comment
            13 => Encoding.UTF8.GetBytes(valid + valid), // two documents
            _ => Encoding.UTF8.GetBytes(Replace(@"""[a-zA-Z]+""(?=\s*:)", "\"" + new string('x', random.Next(1, 2000)) + "\"")), // unknown long name
        };
    }

    [Fact]
    public async Task A_body_over_64_KiB_is_413()
    {
        var user = await NewUserAsync(http);
        var big = "{\"modelId\":\"" + Guid.NewGuid() + "\",\"inputTokens\":1,\"outputTokens\":1,\"pad\":\"" + new string('a', 70 * 1024) + "\"}";
        var response = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), big);
        response.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal(10.0000m, await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task Json_deeper_than_32_is_400()
    {
        // Under a member the route does not take (refused as such since unknown members are; before, skipped up to
        // the depth limit) and under one it takes (refused as the wrong type before any depth is reached): both 400.
        var user = await NewUserAsync(http);
        var nested = new string('[', 40) + new string(']', 40);
        var underUnknown = "{\"modelId\":\"" + Guid.NewGuid() + "\",\"inputTokens\":1,\"outputTokens\":1,\"x\":" + nested + "}";
        var underKnown = "{\"modelId\":\"" + Guid.NewGuid() + "\",\"inputTokens\":" + nested + ",\"outputTokens\":1}";
        (await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), underUnknown)).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), underKnown)).ShouldBe(HttpStatusCode.BadRequest);
        Assert.Equal(10.0000m, await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task Malformed_json_is_400_with_a_clear_detail()
    {
        var response = await http.PostAsync("/v1/usage", Tokens.Service(), "{\"projectId\": ");
        response.ShouldBe(HttpStatusCode.BadRequest);
        Assert.Contains("JSON", response.Json.GetProperty("detail").GetString());
        Assert.DoesNotContain("   at ", response.Body);
    }
}
