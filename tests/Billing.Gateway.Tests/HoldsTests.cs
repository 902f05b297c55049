using System.Net;
using Billing.Testing;
using Npgsql;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

/// <summary>The Holds routes of API.md over real HTTP: statuses, bodies, idempotency, 402/409, listing.</summary>
[Collection(GatewayCollection.Name)]
public sealed class HoldsTests(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    private static string HoldBody(Guid? project, Guid user, Guid model, long input, long maxOutput, Guid? holdId = null, int? ttl = null) =>
        Json(new { holdId, projectId = project, userId = user, modelId = model, inputTokens = input, maxOutputTokens = maxOutput, ttlSeconds = ttl });

    [Fact]
    public async Task A_streaming_call_holds_then_captures_and_the_account_shows_held_and_available()
    {
        var (project, user) = await NewProjectAsync(http); // project 20, user 10
        var model = await NewModelAsync(http, "1000000", "1000000"); // 1 per token

        var placed = await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(project, user, model, 2, 6));
        placed.ShouldBe(HttpStatusCode.Created);
        var holdId = placed.Json.GetProperty("holdId").GetGuid();
        Assert.Equal(("active", "project", "8.0000"), (placed.Json.GetProperty("status").GetString(), placed.Json.GetProperty("payer").GetString(), placed.RawMember("amount")));
        Assert.Equal(project, placed.Json.GetProperty("accountId").GetGuid());

        var account = await http.GetAsync($"/v1/projects/{project}/billing", Tokens.Service());
        Assert.Equal((20.0000m, 8m, 12.0000m), (account.Json.GetProperty("balance").GetDecimal(), account.Json.GetProperty("held").GetDecimal(), account.Json.GetProperty("available").GetDecimal()));

        var captured = await http.PostAsync($"/v1/holds/{holdId}/capture", Tokens.Service(), Json(new { inputTokens = 2, outputTokens = 3 }));
        captured.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(("5.0000", "5.0000", "3.0000", "0.0000", "8.0000"), (captured.RawMember("cost"), captured.RawMember("charged"), captured.RawMember("released"), captured.RawMember("shortfall"), captured.RawMember("held")));
        Assert.Equal((holdId, "project", false), (captured.Json.GetProperty("holdId").GetGuid(), captured.Json.GetProperty("deductedFrom").GetString(), captured.Json.GetProperty("late").GetBoolean()));
        var again = await http.PostAsync($"/v1/holds/{holdId}/capture", Tokens.Service(), Json(new { inputTokens = 9, outputTokens = 9 }));
        again.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(captured.Body, again.Body);

        var hold = await http.GetAsync($"/v1/holds/{holdId}", Tokens.Service());
        Assert.Equal("captured", hold.Json.GetProperty("status").GetString());
        var history = await http.GetAsync($"/v1/projects/{project}/history", Tokens.Service());
        var row = history.Json.GetProperty("items")[0];
        Assert.Equal(("ai_usage", holdId, -5m), (row.GetProperty("reason").GetString(), row.GetProperty("holdId").GetGuid(), row.GetProperty("amount").GetDecimal()));
        Assert.Equal(15.0000m, await BalanceAsync(http, "projects", project));
    }

    [Fact]
    public async Task The_same_hold_id_is_200_with_the_hold_and_another_body_is_409()
    {
        var user = await NewUserAsync(http);
        var model = await NewModelAsync(http, "1000000", "1000000");
        var holdId = Guid.NewGuid();

        var first = await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 1, 1), new Dictionary<string, string> { ["Idempotency-Key"] = holdId.ToString() });
        var repeat = await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 1, 1, holdId));
        var other = await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 1, 2, holdId));

        first.ShouldBe(HttpStatusCode.Created);
        repeat.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(first.Body, repeat.Body);
        other.ShouldBe(HttpStatusCode.Conflict);
        Assert.Equal("application/problem+json", other.ContentType);
        Assert.Equal(8.0000m, (await http.GetAsync($"/v1/users/{user}/billing", Tokens.Service())).Json.GetProperty("available").GetDecimal());
    }

    [Fact]
    public async Task ReviewDefect_Two_copies_of_a_placement_sent_at_once_answer_one_201_and_one_200()
    {
        var user = await NewUserAsync(http);
        var model = await NewModelAsync(http, "1000000", "1000000");
        var holdId = Guid.NewGuid();
        Task<ApiResponse> Place() => http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 1, 1, holdId));

        ApiResponse first, second;
        await using (var connection = new NpgsqlConnection(fixture.ConnectionString))
        {
            // The first copy's write waits on the account's row lock; the second arrives while it is in flight (it
            // found no hold stored yet, which is what a check before placing would see) and waits behind it.
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var lockRow = new NpgsqlCommand("UPDATE user_billing SET balance = balance WHERE \"user\" = $1", connection, transaction))
            {
                lockRow.Parameters.Add(new NpgsqlParameter { Value = user });
                await lockRow.ExecuteNonQueryAsync();
            }

            var firstCopy = Place();
            await LockWaits.UntilBlockedByAsync(fixture.ConnectionString, connection);
            var secondCopy = Place();
            Assert.NotSame(secondCopy, await Task.WhenAny(secondCopy, Task.Delay(TimeSpan.FromSeconds(1))));
            await transaction.RollbackAsync();
            (first, second) = (await firstCopy, await secondCopy);
        }

        Assert.Equal((HttpStatusCode.Created, HttpStatusCode.OK), (first.Status, second.Status)); // the first placed it
        Assert.Equal(first.Body, second.Body);
        Assert.Equal(8.0000m, (await http.GetAsync($"/v1/users/{user}/billing", Tokens.Service())).Json.GetProperty("available").GetDecimal());
    }

    [Fact]
    public async Task No_account_can_cover_it_is_402_with_billingErrorId_and_maxAffordableOutputTokens()
    {
        var (project, user) = await NewProjectAsync(http); // 20 and 10
        var model = await NewModelAsync(http, "1000000", "2000000"); // input 1, output 2 per token
        var holdId = Guid.NewGuid();

        var refused = await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(project, user, model, 4, 100, holdId));
        var repeat = await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(project, user, model, 4, 100, holdId));

        refused.ShouldBe(HttpStatusCode.PaymentRequired);
        Assert.Equal(8, refused.Json.GetProperty("maxAffordableOutputTokens").GetInt64()); // project: (20 - 4) / 2
        var errorId = refused.Json.GetProperty("billingErrorId").GetGuid();
        Assert.Equal(errorId, repeat.Json.GetProperty("billingErrorId").GetGuid());
        var errors = await http.GetAsync($"/v1/billing-errors?scope=project&scopeId={project}", Tokens.Service());
        Assert.Equal(1, errors.Json.GetProperty("items").GetArrayLength());
        Assert.Equal("insufficient_balance", errors.Json.GetProperty("items")[0].GetProperty("errorType").GetString());
        (await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(project, user, model, 4, 8))).ShouldBe(HttpStatusCode.Created);
    }

    /// <summary>A hold id keeps its first answer: after a 402 and a top-up that would cover it, the same id is still 402, with the same billing error.</summary>
    [Fact]
    public async Task A_refused_hold_id_stays_402_after_a_top_up_and_a_new_hold_id_is_201()
    {
        var user = await NewUserAsync(http); // 10
        var model = await NewModelAsync(http, "1000000", "1000000"); // 1 per token
        var holdId = Guid.NewGuid();
        var refused = await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 12, 0, holdId));
        (await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), Json(new { amount = 5, reason = "top_up" }))).ShouldBe(HttpStatusCode.OK);

        var again = await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 12, 0, holdId));
        var get = await http.GetAsync($"/v1/holds/{holdId}", Tokens.Service());
        var fresh = await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 12, 0));

        refused.ShouldBe(HttpStatusCode.PaymentRequired);
        again.ShouldBe(HttpStatusCode.PaymentRequired);
        Assert.Equal(refused.Json.GetProperty("billingErrorId").GetGuid(), again.Json.GetProperty("billingErrorId").GetGuid());
        Assert.Equal(3, again.Json.GetProperty("maxAffordableOutputTokens").GetInt64()); // 15 available − 12 input
        get.ShouldBe(HttpStatusCode.NotFound);
        fresh.ShouldBe(HttpStatusCode.Created);
        Assert.Equal(3.0000m, (await http.GetAsync($"/v1/users/{user}/billing", Tokens.Service())).Json.GetProperty("available").GetDecimal());
    }

    [Fact]
    public async Task A_refused_late_capture_stays_402_after_a_top_up_and_a_new_usage_id_is_charged()
    {
        var user = await NewUserAsync(http); // 10
        var model = await NewModelAsync(http, "1000000", "1000000"); // 1 per token
        var hold = await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 0, 4, ttl: 1));
        hold.ShouldBe(HttpStatusCode.Created);
        var holdId = hold.Json.GetProperty("holdId").GetGuid();
        await Task.Delay(hold.Json.GetProperty("expiresAt").GetDateTimeOffset() - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(500));

        var refused = await http.PostAsync($"/v1/holds/{holdId}/capture", Tokens.Service(), Json(new { inputTokens = 0, outputTokens = 11 }));
        (await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), Json(new { amount = 5, reason = "top_up" }))).ShouldBe(HttpStatusCode.OK); // 15
        var again = await http.PostAsync($"/v1/holds/{holdId}/capture", Tokens.Service(), Json(new { inputTokens = 0, outputTokens = 11 }));
        var newUsageId = await http.PostAsync($"/v1/holds/{holdId}/capture", Tokens.Service(), Json(new { inputTokens = 0, outputTokens = 11, usageId = Guid.NewGuid() }));

        refused.ShouldBe(HttpStatusCode.PaymentRequired);
        again.ShouldBe(HttpStatusCode.PaymentRequired);
        Assert.Equal(refused.Json.GetProperty("billingErrorId").GetGuid(), again.Json.GetProperty("billingErrorId").GetGuid());
        newUsageId.ShouldBe(HttpStatusCode.OK);
        Assert.Equal((true, 11m, 4.0000m), (newUsageId.Json.GetProperty("late").GetBoolean(), newUsageId.Json.GetProperty("charged").GetDecimal(), await BalanceAsync(http, "users", user)));
    }

    [Fact]
    public async Task Capture_after_void_and_void_after_capture_are_409_and_void_is_idempotent()
    {
        var user = await NewUserAsync(http);
        var model = await NewModelAsync(http, "1000000", "1000000");
        var voided = (await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 1, 1))).Json.GetProperty("holdId").GetGuid();
        var captured = (await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 1, 1))).Json.GetProperty("holdId").GetGuid();

        var void1 = await http.PostAsync($"/v1/holds/{voided}/void", Tokens.Service());
        var void2 = await http.PostAsync($"/v1/holds/{voided}/void", Tokens.Service());
        (await http.PostAsync($"/v1/holds/{captured}/capture", Tokens.Service(), Json(new { inputTokens = 1, outputTokens = 0, usageId = Guid.NewGuid() }))).ShouldBe(HttpStatusCode.OK);

        void1.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("voided", void1.Json.GetProperty("status").GetString());
        Assert.Equal(void1.Body, void2.Body);
        (await http.PostAsync($"/v1/holds/{voided}/capture", Tokens.Service(), Json(new { inputTokens = 1, outputTokens = 0 }))).ShouldBe(HttpStatusCode.Conflict);
        (await http.PostAsync($"/v1/holds/{captured}/void", Tokens.Service())).ShouldBe(HttpStatusCode.Conflict);
        Assert.Equal(9.0000m, await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task Over_capture_reports_the_shortfall_and_one_capture_shortfall_error()
    {
        var user = await NewUserAsync(http); // 10
        var model = await NewModelAsync(http, "1000000", "1000000");
        var holdId = (await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 0, 4))).Json.GetProperty("holdId").GetGuid();

        var captured = await http.PostAsync($"/v1/holds/{holdId}/capture", Tokens.Service(), Json(new { inputTokens = 0, outputTokens = 12 }));

        captured.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(("12.0000", "10.0000", "2.0000"), (captured.RawMember("cost"), captured.RawMember("charged"), captured.RawMember("shortfall")));
        var errors = await http.GetAsync($"/v1/billing-errors?scope=user&scopeId={user}", Tokens.Service());
        Assert.Equal("capture_shortfall", errors.Json.GetProperty("items")[0].GetProperty("errorType").GetString());
        Assert.Equal(0m, await BalanceAsync(http, "users", user));
    }

    [Fact]
    public async Task Bad_input_is_400_unknown_holds_404_no_price_422_and_nothing_changes()
    {
        var user = await NewUserAsync(http);
        var model = await NewModelAsync(http, "1000000", "1000000");

        (await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 1, 1, ttl: 0))).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 1, 1, ttl: 86_401))).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, -1, 1))).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/holds", Tokens.Service(), Json(new { userId = user, modelId = model, inputTokens = 1 }))).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/holds", Tokens.Service(), "{not json")).ShouldBe(HttpStatusCode.BadRequest);
        (await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, Guid.NewGuid(), 1, 1))).ShouldBe((HttpStatusCode)422);
        (await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, Guid.NewGuid(), model, 1, 1))).ShouldBe(HttpStatusCode.NotFound);
        (await http.GetAsync("/v1/holds/not-a-uuid", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/holds/{Guid.NewGuid()}", Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
        (await http.PostAsync($"/v1/holds/{Guid.NewGuid()}/capture", Tokens.Service(), Json(new { inputTokens = 1, outputTokens = 1 }))).ShouldBe(HttpStatusCode.NotFound);
        (await http.PostAsync($"/v1/holds/{Guid.NewGuid()}/void", Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
        (await http.PostAsync("/v1/holds", Tokens.User(user), HoldBody(null, user, model, 1, 1))).ShouldBe(HttpStatusCode.Forbidden);
        var account = await http.GetAsync($"/v1/users/{user}/billing", Tokens.Service());
        Assert.Equal((10.0000m, 0m), (account.Json.GetProperty("balance").GetDecimal(), account.Json.GetProperty("held").GetDecimal()));
    }

    [Fact]
    public async Task Holds_are_listed_per_account_newest_first_paged_filtered_and_a_user_reads_their_own()
    {
        var (project, user) = await NewProjectAsync(http);
        var model = await NewModelAsync(http, "1000000", "1000000");
        var ids = new List<Guid>();
        for (var i = 0; i < 3; i++) ids.Add((await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(project, user, model, 1, 0))).Json.GetProperty("holdId").GetGuid());
        var personal = (await http.PostAsync("/v1/holds", Tokens.Service(), HoldBody(null, user, model, 1, 0))).Json.GetProperty("holdId").GetGuid();
        (await http.PostAsync($"/v1/holds/{ids[2]}/void", Tokens.Service())).ShouldBe(HttpStatusCode.OK);

        var page1 = await http.GetAsync($"/v1/projects/{project}/holds?limit=2", Tokens.Service());
        var page2 = await http.GetAsync($"/v1/projects/{project}/holds?limit=2&cursor={page1.Json.GetProperty("nextCursor").GetString()}", Tokens.Service());
        var active = await http.GetAsync($"/v1/projects/{project}/holds?status=active", Tokens.User(user)); // the creator
        var mine = await http.GetAsync($"/v1/users/{user}/holds", Tokens.User(user));

        var listed = page1.Json.GetProperty("items").EnumerateArray().Concat(page2.Json.GetProperty("items").EnumerateArray()).Select(h => h.GetProperty("holdId").GetGuid());
        Assert.Equal(ids.AsEnumerable().Reverse(), listed);
        Assert.Equal("Null", JsonValueKind(page2));
        Assert.Equal(2, active.Json.GetProperty("items").GetArrayLength());
        Assert.Equal(personal, mine.Json.GetProperty("items")[0].GetProperty("holdId").GetGuid());
        (await http.GetAsync($"/v1/users/{user}/holds", Tokens.User(Guid.NewGuid()))).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync($"/v1/users/{user}/holds?status=pending", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync($"/v1/users/{Guid.NewGuid()}/holds", Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
    }

    private static string JsonValueKind(ApiResponse page) => page.Json.GetProperty("nextCursor").ValueKind.ToString();
}
