using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Npgsql;
using Orleans.Runtime;

namespace Billing.Gateway.Hosting;

/// <summary>
/// The last line: unreadable requests become 400/413 with a clear detail; faults of the cluster become
/// 503 (unavailable) or 500 with no detail at all. Faults are logged; nothing internal reaches the client.
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
        else if (IsUnavailable(exception))
        {
            problem = new ProblemDetails
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "Billing is temporarily unavailable",
                Detail = "The billing cluster could not complete the request. Retry later with the same usage id.",
            };
            LogUnavailable(logger, exception, httpContext.Request.Method, httpContext.Request.Path, exception.GetType().Name);
        }
        else
        {
            problem = new ProblemDetails
            {
                Status = StatusCodes.Status500InternalServerError,
                Title = "An unexpected error occurred",
            };
            LogFault(logger, exception, httpContext.Request.Method, httpContext.Request.Path);
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
            JsonException json => $"The request body is not valid JSON for this route: {json.Message}",
            _ => bad.Message,
        };
    }

    private static bool IsUnavailable(Exception exception) => exception switch
    {
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Billing cluster unavailable for {Method} {Path} ({ExceptionType})")]
    private static partial void LogUnavailable(ILogger logger, Exception exception, string method, PathString path, string exceptionType);

    [LoggerMessage(Level = LogLevel.Error, Message = "Unexpected fault handling {Method} {Path}")]
    private static partial void LogFault(ILogger logger, Exception exception, string method, PathString path);
}
