using Billing.Client.Contracts;
using Billing.Client.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Billing.Client.Endpoints;

/// <summary>Webhook endpoints (admin): the secret is in the creation's answer only.</summary>
public static class WebhooksApi
{
    public static IEndpointRouteBuilder MapWebhooksApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/webhooks").WithTags("Webhooks").RequireAuthorization(BillingClaims.AdminPolicy);
        group.MapPost("", Create).WithName("CreateWebhook")
            .WithSummary("Register an endpoint for some event types; the answer shows its signing secret. Idempotent by id (body or Idempotency-Key): the same id again answers the endpoint, 409 with another url or events.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapGet("", List).WithName("ListWebhooks").WithSummary("The webhook endpoints (without secrets).");
        group.MapDelete("/{id}", Delete).WithName("DeleteWebhook").WithSummary("Remove an endpoint; nothing more is delivered to it.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<Results<Created<WebhookResponse>, Ok<WebhookResponse>, ProblemHttpResult>> Create(
        [FromBody] WebhookRequest body,
        [FromHeader(Name = OperationIds.IdempotencyKeyHeader)] string? idempotencyKey,
        HttpContext http,
        IClusterClient cluster)
    {
        if (body is null) return ApiProblems.MissingBody();
        if (string.IsNullOrWhiteSpace(body.Url)) return ApiProblems.BadRequest("url is required.");
        if (body.Events is null) return ApiProblems.BadRequest("events is required.");
        if (!RequestInput.TryResolveId(body.Id, idempotencyKey, "id", out var id, out var invalid)) return invalid;
        OperationIds.Remember(http, "id", id); // a 503 names the id to retry with, as for every other creation

        var result = await cluster.GetGrain<IWebhooksGrain>(0).CreateOnce(new WebhookEndpointInput(body.Url, body.Events, id));
        if (result.Problem is { } problem) return ApiProblems.Problem(problem);
        var endpoint = WebhookResponse.From(result.Value!.Endpoint);
        return result.Value.Created ? TypedResults.Created($"/v1/webhooks/{endpoint.Id}", endpoint) : TypedResults.Ok(endpoint);
    }

    private static async Task<Ok<WebhookListResponse>> List(IClusterClient cluster)
    {
        var list = await cluster.GetGrain<IWebhooksGrain>(0).List();
        return TypedResults.Ok(new WebhookListResponse(list.Items.Select(WebhookResponse.From).ToArray()));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(string id, IClusterClient cluster)
    {
        if (!RequestInput.TryParseId(id, "id", out var endpointId, out var invalid)) return invalid;
        return await cluster.GetGrain<IWebhooksGrain>(0).Delete(endpointId)
            ? TypedResults.NoContent()
            : TypedResults.Problem(detail: $"There is no webhook endpoint {endpointId}.", statusCode: StatusCodes.Status404NotFound, title: "Webhook not found",
                extensions: new Dictionary<string, object?> { ["code"] = "webhook_not_found" });
    }
}
