using System.Globalization;
using System.Net;
using System.Text.Json;
using Billing.Testing;
using Npgsql;
using static Billing.Gateway.Tests.Scenario;

namespace Billing.Gateway.Tests;

/// <summary>GET /v1/usage/summary over real HTTP: buckets, grouping, limits, access, and totals = the SQL sums of the history rows.</summary>
[Collection(GatewayCollection.Name)]
public sealed class UsageSummaryTests(GatewayFixture fixture)
{
    private readonly HttpClient http = fixture.Http;

    private static string Summary(string scope, Guid id, string extra = "") => $"/v1/usage/summary?scope={scope}&scopeId={id}{extra}";

    [Fact]
    public async Task Totals_equal_the_SQL_sums_of_the_usage_history_rows_and_the_receipts()
    {
        var (project, user) = await NewProjectAsync(http);
        var cheap = await NewModelAsync(http, "3.00", "15.00");
        var dear = await NewModelAsync(http, "0.37", "1.111");
        var projectCosts = new List<decimal>();
        var userCosts = new List<decimal>();
        foreach (var (model, input, output) in new[] { (cheap, 1234L, 567L), (dear, 999L, 1L), (cheap, 7L, 3L), (dear, 123456L, 7890L) })
        {
            var receipt = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, model, input, output));
            receipt.ShouldBe(HttpStatusCode.OK);
            projectCosts.Add(receipt.Json.GetProperty("cost").GetDecimal());
        }

        // Drain the project so the next usages fall back to the user (the project keeps a zero marker row).
        var projectBalance = await BalanceAsync(http, "projects", project);
        var big = await NewDollarPerTokenModelAsync(http);
        (await http.PostAsync($"/v1/users/{user}/credits", Tokens.Admin(), "{\"amount\":50.00,\"reason\":\"top_up\"}")).ShouldBe(HttpStatusCode.OK);
        var fallback = await http.PostAsync("/v1/usage", Tokens.Service(), UsageBody(project, user, big, (long)Math.Ceiling(projectBalance) + 1, 0));
        fallback.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("user", fallback.Json.GetProperty("deductedFrom").GetString());
        userCosts.Add(fallback.Json.GetProperty("cost").GetDecimal());
        var personal = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = dear, inputTokens = 4242, outputTokens = 2121 }));
        personal.ShouldBe(HttpStatusCode.OK);
        userCosts.Add(personal.Json.GetProperty("cost").GetDecimal());

        foreach (var (scope, id, costs) in new[] { ("project", project, projectCosts), ("user", user, userCosts) })
        {
            var sql = await SqlSumsAsync(scope, id);
            foreach (var extra in new[] { "", "&groupBy=model", "&bucket=hour", "&bucket=hour&groupBy=model" })
            {
                var summary = await http.GetAsync(Summary(scope, id, extra), Tokens.Service());
                summary.ShouldBe(HttpStatusCode.OK);
                var total = summary.Json.GetProperty("total");
                Assert.Equal(sql.Requests, total.GetProperty("requests").GetInt64());
                Assert.Equal(sql.Input, total.GetProperty("inputTokens").GetInt64());
                Assert.Equal(sql.Output, total.GetProperty("outputTokens").GetInt64());
                Assert.Equal(sql.Cost, total.GetProperty("cost").GetDecimal());
                Assert.Equal(costs.Sum(), total.GetProperty("cost").GetDecimal());
                Assert.Equal("USD", total.GetProperty("currency").GetString());
                var buckets = summary.Json.GetProperty("buckets").EnumerateArray().ToArray();
                Assert.Equal(sql.Cost, buckets.Sum(b => b.GetProperty("cost").GetDecimal()));
                Assert.Equal(sql.Requests, buckets.Sum(b => b.GetProperty("requests").GetInt64()));
                Assert.All(buckets, b => Assert.Equal(extra.Contains("model"), b.TryGetProperty("modelId", out _)));
            }
        }

        // Grouped by model: each model's cost is that model's rows' sum, written exactly as SQL sums it.
        var grouped = await http.GetAsync(Summary("project", project, "&groupBy=model"), Tokens.Service());
        var dearBucket = grouped.Json.GetProperty("buckets").EnumerateArray().Single(b => b.GetProperty("modelId").GetGuid() == dear);
        var dearSql = await SqlSumsAsync("project", project, dear);
        Assert.Equal(dearSql.CostText, dearBucket.GetProperty("cost").GetRawText());
        Assert.Equal(2, dearBucket.GetProperty("requests").GetInt64());
    }

    [Fact]
    public async Task Buckets_are_UTC_days_or_hours_from_inclusive_to_exclusive()
    {
        var day0 = new DateTimeOffset(2026, 3, 10, 0, 0, 0, TimeSpan.Zero);
        var m1 = Guid.NewGuid();
        var m2 = Guid.NewGuid();
        var user = await SeedUserLedgerAsync(day0.AddDays(-5), [
            (day0.AddHours(-1), m1, "1.5", 10, 1),                   // before from: excluded
            (day0, m1, "0.25", 100, 10),                             // exactly from: included, day 0 hour 0
            (day0.AddHours(23).AddMinutes(59), m2, "0.125", 5, 5),   // day 0 hour 23
            (day0.AddDays(1), m1, "0.0001", 1, 0),                   // midnight: day 1
            (day0.AddDays(1).AddHours(5), m1, "0.1", 2, 2),          // day 1
            (day0.AddDays(2), m2, "3", 7, 7),                        // exactly to: excluded
        ]);
        var range = $"&from={day0:yyyy-MM-ddTHH:mm:ssZ}&to={day0.AddDays(2):yyyy-MM-ddTHH:mm:ssZ}";

        var daily = await http.GetAsync(Summary("user", user, range), Tokens.Service());
        daily.ShouldBe(HttpStatusCode.OK);
        var days = daily.Json.GetProperty("buckets").EnumerateArray().ToArray();
        Assert.Equal(["2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z"], days.Select(b => b.GetProperty("start").GetString()!).ToArray());
        Assert.Equal(["0.375", "0.1001"], days.Select(b => b.GetProperty("cost").GetDecimal().ToString(CultureInfo.InvariantCulture)).ToArray());
        Assert.Equal([2L, 2L], days.Select(b => b.GetProperty("requests").GetInt64()).ToArray());
        Assert.Equal("0.4751", daily.Json.GetProperty("total").GetProperty("cost").GetDecimal().ToString(CultureInfo.InvariantCulture));
        Assert.Equal(108, daily.Json.GetProperty("total").GetProperty("inputTokens").GetInt64());

        var byModel = await http.GetAsync(Summary("user", user, range + "&groupBy=model"), Tokens.Service());
        var models = byModel.Json.GetProperty("buckets").EnumerateArray()
            .Select(b => (b.GetProperty("start").GetString(), b.GetProperty("modelId").GetGuid(), b.GetProperty("cost").GetDecimal())).ToArray();
        Assert.Equal(3, models.Length);
        Assert.Contains(("2026-03-10T00:00:00Z", m1, 0.25m), models);
        Assert.Contains(("2026-03-10T00:00:00Z", m2, 0.125m), models);
        Assert.Contains(("2026-03-11T00:00:00Z", m1, 0.1001m), models);

        var hourly = await http.GetAsync(Summary("user", user, $"&bucket=hour&from={day0:yyyy-MM-ddTHH:mm:ssZ}&to={day0.AddHours(48):yyyy-MM-ddTHH:mm:ssZ}"), Tokens.Service());
        hourly.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(["2026-03-10T00:00:00Z", "2026-03-10T23:00:00Z", "2026-03-11T00:00:00Z", "2026-03-11T05:00:00Z"],
            hourly.Json.GetProperty("buckets").EnumerateArray().Select(b => b.GetProperty("start").GetString()!).ToArray());

        // Ranges that do not start or end on a whole hour: the parts of hours at the ends are summed from the rows.
        foreach (var (from, to, expected) in new[]
                 {
                     ("2026-03-09T23:30:00Z", "2026-03-11T05:30:00Z", "0.4751"),
                     ("2026-03-10T00:00:00.001Z", "2026-03-11T05:00:00Z", "0.1251"),
                     ("2026-03-10T23:59:00Z", "2026-03-11T00:00:00.001Z", "0.1251"),
                     ("2026-03-11T05:00:00Z", "2026-03-11T05:00:30Z", "0.1"),
                     ("2026-03-11T05:00:00.001Z", "2026-03-11T05:00:30Z", "0"),
                 })
        {
            var partial = await http.GetAsync(Summary("user", user, $"&from={from}&to={to}"), Tokens.Service());
            partial.ShouldBe(HttpStatusCode.OK);
            Assert.Equal(expected, partial.Json.GetProperty("total").GetProperty("cost").GetDecimal().ToString(CultureInfo.InvariantCulture));
        }

        // An offset in the query is read as the instant it names; buckets stay UTC-aligned.
        var offset = await http.GetAsync(Summary("user", user, "&from=2026-03-10T01:00:00%2B01:00&to=2026-03-12T01:00:00%2B01:00"), Tokens.Service());
        offset.ShouldBe(HttpStatusCode.OK);
        Assert.Equal("0.4751", offset.Json.GetProperty("total").GetProperty("cost").GetDecimal().ToString(CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Defaults_are_the_last_30_days_by_day_and_48_hours_by_hour_and_a_pro_quota_counts_as_spend()
    {
        var user = await NewUserAsync(http);
        (await http.PutAsync($"/v1/users/{user}/plan", Tokens.Admin(), "{\"isPro\":true,\"monthlyQuota\":0.01}")).ShouldBe(HttpStatusCode.OK);
        var model = await NewModelAsync(http, "3.00", "15.00");
        var receipt = await http.PostAsync($"/v1/users/{user}/usage", Tokens.Service(), Json(new { modelId = model, inputTokens = 5000, outputTokens = 1000 }));
        receipt.ShouldBe(HttpStatusCode.OK);
        Assert.NotEqual(0m, receipt.Json.GetProperty("quotaUsed").GetDecimal());

        var daily = await http.GetAsync(Summary("user", user), Tokens.Service());
        daily.ShouldBe(HttpStatusCode.OK);
        var from = DateTimeOffset.Parse(daily.Json.GetProperty("from").GetString()!, CultureInfo.InvariantCulture);
        var to = DateTimeOffset.Parse(daily.Json.GetProperty("to").GetString()!, CultureInfo.InvariantCulture);
        Assert.Equal(TimeSpan.FromDays(30), to - from);
        Assert.Equal(TimeSpan.Zero, to.TimeOfDay);
        Assert.True(to > DateTimeOffset.UtcNow && to - DateTimeOffset.UtcNow <= TimeSpan.FromDays(1));
        Assert.Equal("day", daily.Json.GetProperty("bucket").GetString());
        Assert.Equal(receipt.Json.GetProperty("cost").GetDecimal(), daily.Json.GetProperty("total").GetProperty("cost").GetDecimal());

        var hourly = await http.GetAsync(Summary("user", user, "&bucket=hour"), Tokens.Service());
        hourly.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(TimeSpan.FromHours(48), DateTimeOffset.Parse(hourly.Json.GetProperty("to").GetString()!, CultureInfo.InvariantCulture)
                                             - DateTimeOffset.Parse(hourly.Json.GetProperty("from").GetString()!, CultureInfo.InvariantCulture));
        Assert.Equal(receipt.Json.GetProperty("cost").GetDecimal(), hourly.Json.GetProperty("total").GetProperty("cost").GetDecimal());

        // No usage: an empty list and a zero total in the account's currency.
        var other = await NewUserAsync(http);
        var empty = await http.GetAsync(Summary("user", other), Tokens.Service());
        empty.ShouldBe(HttpStatusCode.OK);
        Assert.Equal(0, empty.Json.GetProperty("buckets").GetArrayLength());
        Assert.Equal("0", empty.Json.GetProperty("total").GetProperty("cost").GetRawText());
        Assert.Equal("USD", empty.Json.GetProperty("total").GetProperty("currency").GetString());
    }

    [Theory]
    [InlineData("&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:01Z")]                 // 31 days + 1 s by day
    [InlineData("&bucket=hour&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:01Z")]     // 48 h + 1 s by hour
    [InlineData("&bucket=hour&from=2026-01-01T00:00:00Z")]                             // from + 48 h is fine, so use to:
    [InlineData("&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z")]                 // to before from
    [InlineData("&from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z")]                 // empty range
    [InlineData("&bucket=week")]
    [InlineData("&groupBy=user")]
    [InlineData("&from=yesterday")]
    [InlineData("&from=11/01/2026")]                                                     // ReviewDefect: read as a US date before
    [InlineData("&to=Nov%201%202026")]
    [InlineData("&to=2026-13-01T00:00:00Z")]
    public async Task Bad_ranges_and_parameters_are_400(string extra)
    {
        var user = await NewUserAsync(http);
        var path = Summary("user", user, extra);
        if (extra == "&bucket=hour&from=2026-01-01T00:00:00Z") path += "&to=2026-01-05T00:00:00Z";
        var response = await http.GetAsync(path, Tokens.Service());
        response.ShouldBe(HttpStatusCode.BadRequest);
        Assert.False(string.IsNullOrEmpty(response.Json.GetProperty("detail").GetString()));
    }

    [Fact]
    public async Task The_longest_ranges_are_allowed_and_bad_scopes_are_400_or_404()
    {
        var user = await NewUserAsync(http);
        (await http.GetAsync(Summary("user", user, "&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z"), Tokens.Service())).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync(Summary("user", user, "&bucket=hour&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z"), Tokens.Service())).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync($"/v1/usage/summary?scope=team&scopeId={user}", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync("/v1/usage/summary?scope=user&scopeId=not-a-uuid", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync("/v1/usage/summary?scope=user", Tokens.Service())).ShouldBe(HttpStatusCode.BadRequest);
        (await http.GetAsync(Summary("user", Guid.NewGuid()), Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
        (await http.GetAsync(Summary("project", Guid.NewGuid()), Tokens.Service())).ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Plain_users_read_only_their_own_accounts_summaries()
    {
        var (project, user) = await NewProjectAsync(http);
        var (otherProject, otherUser) = await NewProjectAsync(http);
        (await http.GetAsync(Summary("user", user), Tokens.User(user))).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync(Summary("project", project), Tokens.User(user))).ShouldBe(HttpStatusCode.OK);
        (await http.GetAsync(Summary("user", otherUser), Tokens.User(user))).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync(Summary("project", otherProject), Tokens.User(user))).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync(Summary("project", Guid.NewGuid()), Tokens.User(user))).ShouldBe(HttpStatusCode.Forbidden);
        (await http.GetAsync(Summary("user", user), null)).ShouldBe(HttpStatusCode.Unauthorized);
        (await http.GetAsync(Summary("user", user), Tokens.Admin())).ShouldBe(HttpStatusCode.OK);
    }

    private sealed record Sums(long Requests, long Input, long Output, decimal Cost, string CostText);

    /// <summary>The account's usage rows summed in SQL, independently of the store (cost = quota drawn + balance drawn).</summary>
    private async Task<Sums> SqlSumsAsync(string scope, Guid id, Guid? model = null)
    {
        var (table, key, reasons) = scope == "project"
            ? ("project_billing_history", "project", "('ai_usage')")
            : ("user_billing_history", "\"user\"", "('ai_usage_personal','ai_usage_user_fallback')");
        await using var connection = new NpgsqlConnection(fixture.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            $"SELECT count(*), coalesce(sum(input_tokens),0), coalesce(sum(output_tokens),0), coalesce(sum(quota_used - amount),0), coalesce(sum(quota_used - amount),0)::text " +
            $"FROM {table} WHERE {key} = $1 AND reason IN {reasons} AND ($2::uuid IS NULL OR model_id = $2)", connection);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)model ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Uuid });
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new Sums(reader.GetInt64(0), (long)reader.GetDecimal(1), (long)reader.GetDecimal(2), reader.GetDecimal(3), reader.GetString(4));
    }

    /// <summary>
    /// A user whose ledger was written in the past (the API only writes at now): a 10.0000 signup credit, then the
    /// given personal usages; the account row's balance and version are those of the rows, so I1 holds.
    /// </summary>
    private async Task<Guid> SeedUserLedgerAsync(DateTimeOffset createdAt, (DateTimeOffset At, Guid Model, string Cost, long Input, long Output)[] usages)
    {
        var user = Guid.NewGuid();
        var balance = 10.0000m;
        await using var connection = new NpgsqlConnection(fixture.ConnectionString);
        await connection.OpenAsync();
        await using var tx = await connection.BeginTransactionAsync();
        var rows = new List<(long Seq, decimal Amount, string Reason, decimal After, Guid? Model, long? Input, long? Output, DateTimeOffset At)>
        {
            (1, 10.0000m, "signup_credit", 10.0000m, null, null, null, createdAt),
        };
        foreach (var u in usages)
        {
            var cost = decimal.Parse(u.Cost, CultureInfo.InvariantCulture);
            balance -= cost;
            rows.Add((rows.Count + 1, -cost, "ai_usage_personal", balance, u.Model, u.Input, u.Output, u.At));
        }

        await using (var account = new NpgsqlCommand(
            "INSERT INTO user_billing (\"user\", balance, currency, version, created_at, updated_at) VALUES ($1, $2, 'USD', $3, $4, $5)", connection, tx))
        {
            account.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = user });
            account.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = balance });
            account.Parameters.Add(new NpgsqlParameter<long> { TypedValue = rows.Count });
            account.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = createdAt });
            account.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = rows.Max(r => r.At) });
            await account.ExecuteNonQueryAsync();
        }

        foreach (var r in rows)
        {
            await using var history = new NpgsqlCommand(
                "INSERT INTO user_billing_history (uid, \"user\", seq, amount, currency, reason, balance_after, usage_id, model_id, input_tokens, output_tokens, created_at) " +
                "VALUES ($1, $2, $3, $4, 'USD', $5, $6, $7, $8, $9, $10, $11)", connection, tx);
            var p = history.Parameters;
            p.Add(new NpgsqlParameter<Guid> { TypedValue = Guid.NewGuid() });
            p.Add(new NpgsqlParameter<Guid> { TypedValue = user });
            p.Add(new NpgsqlParameter<long> { TypedValue = r.Seq });
            p.Add(new NpgsqlParameter<decimal> { TypedValue = r.Amount });
            p.Add(new NpgsqlParameter<string> { TypedValue = r.Reason });
            p.Add(new NpgsqlParameter<decimal> { TypedValue = r.After });
            p.Add(new NpgsqlParameter { Value = r.Model is null ? DBNull.Value : Guid.NewGuid(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Uuid });
            p.Add(new NpgsqlParameter { Value = (object?)r.Model ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Uuid });
            p.Add(new NpgsqlParameter { Value = (object?)r.Input ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
            p.Add(new NpgsqlParameter { Value = (object?)r.Output ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
            p.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = r.At });
            await history.ExecuteNonQueryAsync();
        }

        // The rollup the grains would have left for these rows (every hour closed): rows written by SQL are not theirs.
        await using (var rollup = new NpgsqlCommand(LedgerInvariants.RollUpUserUsageRowsSql, connection, tx))
        {
            rollup.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = user });
            await rollup.ExecuteNonQueryAsync();
        }

        await tx.CommitAsync();
        return user;
    }
}
