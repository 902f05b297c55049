using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Npgsql;
using Orleans.Runtime;

namespace Billing.Client.Hosting;

/// <summary>
/// The last line: unreadable requests become 400/413 with a clear detail; faults of the cluster become 503
/// (retryable, with the usage/credit id to retry with) or 500 (not retryable). Faults are logged; nothing internal
/// reaches the client.
/// </summary>
internal sealed partial class GatewayExceptionHandler(IProblemDetailsService problems, ILogger<GatewayExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ProblemDetails problem;
        if (exception is BadHttpRequestException bad)
        {
            problem = new ProblemDetails
            {
                Status = bad.StatusCode,
                Title = bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "Request body too large" : "Bad request",
                Detail = DescribeBadRequest(bad),
            };
            LogBadRequest(logger, httpContext.Request.Method, httpContext.Request.Path, bad.StatusCode);
        }
        else if (httpContext.RequestAborted.IsCancellationRequested && exception is OperationCanceledException)
        {
            return true; // The client went away; nobody is left to answer.
        }
        else if (exception is BillingOperationFailedException || exception.InnerException is BillingOperationFailedException)
        {
            // Deterministic: the silo logged the database error; retrying the same request would fail the same way.
            var operation = OperationIds.Of(httpContext);
            problem = new ProblemDetails
            {
                Status = StatusCodes.Status500InternalServerError,
                Title = "The request could not be applied",
                Detail = operation is null
                    ? "Billing cannot complete this request as sent and did not apply it; retrying it will not help. The fault is logged."
                    : $"Billing cannot complete this request as sent and did not apply it; retrying it will not help. The fault is logged with {operation.Member} {operation.Id}.",
            };
            problem.Extensions["code"] = "operation_failed";
            if (operation is not null) problem.Extensions[operation.Member] = operation.Id;
            LogOperationFailed(logger, httpContext.Request.Method, httpContext.Request.Path, operation?.Member, operation?.Id);
        }
        else if (IsUnavailable(exception))
        {
            // Retryable: name the id (given or generated) so the caller can retry without paying or crediting twice.
            var operation = OperationIds.Of(httpContext);
            problem = new ProblemDetails
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "Billing is temporarily unavailable",
                Detail = operation is null
                    ? "The billing cluster could not complete the request. Retry later."
                    : $"The billing cluster could not complete the request; it may or may not have been applied. Retry later with the same {operation.Member} ({operation.Id}, also in the {OperationIds.IdempotencyKeyHeader} header): it is applied at most once.",
            };
            problem.Extensions["code"] = "unavailable"; // the id, its header and Retry-After: OperationIds.AddToRetryable
            LogUnavailable(logger, exception, httpContext.Request.Method, httpContext.Request.Path, exception.GetType().Name, operation?.Member, operation?.Id);
        }
        else
        {
            var operation = OperationIds.Of(httpContext);
            problem = new ProblemDetails
            {
                Status = StatusCodes.Status500InternalServerError,
                Title = "An unexpected error occurred",
                Detail = "The gateway could not complete the request because of an internal fault; it is logged.",
            };
            if (operation is not null) problem.Extensions[operation.Member] = operation.Id;
            LogFault(logger, exception, httpContext.Request.Method, httpContext.Request.Path, operation?.Member, operation?.Id);
        }

        httpContext.Response.StatusCode = problem.Status!.Value;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails = problem,
            Exception = exception,
        });
    }

    private static string DescribeBadRequest(BadHttpRequestException bad)
    {
        if (bad.StatusCode == StatusCodes.Status413PayloadTooLarge) return "The request body is larger than this gateway accepts.";
        return bad.InnerException switch
        {
            // JsonException messages name the path and position only, never our internals.
            JsonException json when json.Message.StartsWith("The JSON value could not be converted", StringComparison.Ordinal) =>
                $"The value at {json.Path ?? "$"} has the wrong type or format for that field (ids are UUID strings, money and token counts are JSON numbers, token counts are whole numbers).",
            JsonException json when UnmappedMember().Match(json.Message) is { Success: true } member =>
                $"The request body has a member this route does not take: '{member.Groups[1].Value}' (members are camelCase, as API.md names them; nothing was done).",
            JsonException json => $"The request body is not valid JSON for this route: {json.Message}",
            _ => bad.Message,
        };
    }

    private static bool IsUnavailable(Exception exception) => exception switch
    {
        BillingUnavailableException => true,
        BillingOperationFailedException => false,
        SiloUnavailableException or Orleans.Runtime.Messaging.ConnectionFailedException or OrleansMessageRejectionException or GatewayTooBusyException => true,
        TimeoutException or OperationCanceledException => true,
        NpgsqlException => true,
        OrleansException => true,
        // No silo with the billing grains is known yet (the client has not connected): the cluster is unavailable.
        ArgumentException when exception.Message.StartsWith("Could not find an implementation for interface", StringComparison.Ordinal) => true,
        AggregateException aggregate => aggregate.InnerExceptions.Any(IsUnavailable),
        _ => exception.InnerException is { } inner && IsUnavailable(inner),
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Refused unreadable request {Method} {Path} with {StatusCode}")]
    private static partial void LogBadRequest(ILogger logger, string method, PathString path, int statusCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Billing cluster unavailable for {Method} {Path} ({ExceptionType}); answered 503 with {IdMember} {OperationId}")]
    private static partial void LogUnavailable(ILogger logger, Exception exception, string method, PathString path, string exceptionType, string? idMember, Guid? operationId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Billing refused {Method} {Path} as not applicable ({IdMember} {OperationId}); answered 500, see the silo log")]
    private static partial void LogOperationFailed(ILogger logger, string method, PathString path, string? idMember, Guid? operationId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Unexpected fault handling {Method} {Path} ({IdMember} {OperationId})")]
    private static partial void LogFault(ILogger logger, Exception exception, string method, PathString path, string? idMember, Guid? operationId);

    // System.Text.Json's message for JsonUnmappedMemberHandling.Disallow; it also names our type, which is not shown.
    [System.Text.RegularExpressions.GeneratedRegex("^The JSON property '(.*)' could not be mapped to any \\.NET member")]
    private static partial System.Text.RegularExpressions.Regex UnmappedMember();
}
