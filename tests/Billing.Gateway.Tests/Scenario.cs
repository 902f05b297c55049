using System.Net;
using System.Text.Json;

namespace Billing.Gateway.Tests;

/// <summary>Builds fresh accounts and models through the API itself; every test gets its own random ids.</summary>
public static class Scenario
{
    public static async Task<Guid> NewUserAsync(HttpClient http)
    {
        var id = Guid.NewGuid();
        (await http.PostAsync($"/v1/users/{id}/billing", Tokens.Service())).ShouldBe(HttpStatusCode.Created);
        return id;
    }

    /// <summary>A fresh creator (with a user account) and their first project: project 20.0000, user 10.0000.</summary>
    public static async Task<(Guid ProjectId, Guid UserId)> NewProjectAsync(HttpClient http)
    {
        var user = await NewUserAsync(http);
        var project = Guid.NewGuid();
        (await http.PostAsync($"/v1/projects/{project}/billing", Tokens.Service(), Json(new { creatorId = user }))).ShouldBe(HttpStatusCode.Created);
        return (project, user);
    }

    /// <summary>A model with a price in effect now; prices per million tokens, given as exact JSON text.</summary>
    public static async Task<Guid> NewModelAsync(HttpClient http, string inputPerMillion = "3.00", string outputPerMillion = "15.00", string currency = "USD")
    {
        var model = Guid.NewGuid();
        var body = $"{{\"inputPricePerMillion\":{inputPerMillion},\"outputPricePerMillion\":{outputPerMillion},\"currency\":\"{currency}\"}}";
        (await http.PutAsync($"/v1/models/{model}/pricing", Tokens.Admin(), body)).ShouldBe(HttpStatusCode.Created);
        return model;
    }

    /// <summary>A model at 1.00 per input token (1,000,000 per million): n input tokens cost exactly n.</summary>
    public static Task<Guid> NewDollarPerTokenModelAsync(HttpClient http) => NewModelAsync(http, "1000000", "0");

    public static string Json(object value) => JsonSerializer.Serialize(value, JsonSerializerOptions.Web);

    public static string UsageBody(Guid project, Guid user, Guid model, long input, long output, Guid? usageId = null) =>
        Json(usageId is null
            ? new { projectId = project, userId = user, modelId = model, inputTokens = input, outputTokens = output }
            : (object)new { projectId = project, userId = user, modelId = model, inputTokens = input, outputTokens = output, usageId });

    public static async Task<decimal> BalanceAsync(HttpClient http, string kind, Guid id)
    {
        var account = await http.GetAsync($"/v1/{kind}/{id}/billing", Tokens.Service());
        account.ShouldBe(HttpStatusCode.OK);
        return account.Json.GetProperty("balance").GetDecimal();
    }
}
