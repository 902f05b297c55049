using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Billing.Hosting;

/// <summary>
/// The grain boundary for faults: a database exception a grain lets escape has no Orleans codec and would reach
/// the caller (the gateway, an agent grain) as a CodecNotFoundException, i.e. an HTTP 500 with nothing to retry
/// with. This filter logs the original on the silo and throws a serialisable <see cref="BillingUnavailableException"/>
/// (retryable) or <see cref="BillingOperationFailedException"/> (deterministic) in its place. Anything else passes
/// through unchanged: expected outcomes are BillingResult values, and Orleans' own exceptions are serialisable.
/// </summary>
internal sealed partial class BillingFaultFilter(ILogger<BillingFaultFilter> logger) : IIncomingGrainCallFilter
{
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        try
        {
            await context.Invoke();
        }
        catch (Exception exception) when (BillingFaults.Translate(exception) is { } fault)
        {
            var operationId = BillingFaults.OperationIdOf(context.Request);
            if (fault is BillingUnavailableException)
                LogUnavailable(logger, exception, context.InterfaceName, context.MethodName, context.TargetId.ToString(), operationId);
            else
                LogFailed(logger, exception, context.InterfaceName, context.MethodName, context.TargetId.ToString(), operationId);
            throw fault;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Database fault in {Interface}.{Method} on {GrainId} (operation {OperationId}); the caller gets BillingUnavailableException and may retry")]
    private static partial void LogUnavailable(ILogger logger, Exception exception, string @interface, string method, string grainId, Guid? operationId);

    [LoggerMessage(Level = LogLevel.Error,
        Message = "Deterministic database error in {Interface}.{Method} on {GrainId} (operation {OperationId}); the caller gets BillingOperationFailedException, a retry would fail the same way")]
    private static partial void LogFailed(ILogger logger, Exception exception, string @interface, string method, string grainId, Guid? operationId);
}

/// <summary>Which faults are database faults, and whether a retry can cure them.</summary>
public static class BillingFaults
{
    /// <summary>
    /// SQLSTATE classes that describe the data or the statement, not the server's condition: a retry of the same
    /// operation fails the same way (cardinality, data exception, integrity constraint, triggered data change,
    /// syntax or access rule, feature not supported, privilege, routine, WITH CHECK OPTION, program limit, PL/pgSQL).
    /// </summary>
    private static readonly HashSet<string> DeterministicClasses = ["21", "22", "23", "27", "42", "0A", "2B", "2F", "44", "54", "P0"];

    /// <summary>
    /// The serialisable fault to throw instead of <paramref name="exception"/>, or null when it is not a database
    /// fault (or is already one of ours). The original is never attached: it could not cross the boundary either.
    /// </summary>
    public static Exception? Translate(Exception exception)
    {
        if (exception is BillingUnavailableException or BillingOperationFailedException) return null;
        return Find(exception, 0) switch
        {
            PostgresException postgres when IsDeterministic(postgres) => new BillingOperationFailedException(
                $"The operation cannot be completed as sent and was not applied (database error {postgres.SqlState}); retrying it will not help."),
            null => null,
            _ => new BillingUnavailableException(
                "Billing storage is temporarily unavailable or the outcome of the write is unknown; retry with the same id."),
        };
    }

    /// <summary>True for a PostgreSQL error about the data or the statement (a retry repeats it).</summary>
    public static bool IsDeterministic(PostgresException exception) =>
        exception.SqlState.Length >= 2 && DeterministicClasses.Contains(exception.SqlState[..2]);

    /// <summary>The innermost-first database fault in the exception's chain (PostgreSQL, Npgsql, timeout, socket).</summary>
    private static Exception? Find(Exception exception, int depth)
    {
        if (depth > 8) return null;
        switch (exception)
        {
            case PostgresException:
                return exception;
            case NpgsqlException npgsql:
                // A PostgresException inside decides deterministic vs. retryable; otherwise the connection failed.
                return (npgsql.InnerException is { } inner ? Find(inner, depth + 1) as PostgresException : null) ?? exception;
            case TimeoutException or SocketException:
                return exception;
            case AggregateException aggregate:
                return aggregate.InnerExceptions.Select(e => Find(e, depth + 1)).FirstOrDefault(e => e is not null);
            default:
                return exception.InnerException is { } next ? Find(next, depth + 1) : null;
        }
    }

    /// <summary>The usage id (or credit id) among a call's arguments, for the log.</summary>
    public static Guid? OperationIdOf(Orleans.Serialization.Invocation.IInvokable request)
    {
        for (var i = 0; i < request.GetArgumentCount(); i++)
        {
            switch (request.GetArgument(i))
            {
                case AiUsage usage: return usage.UsageId;
                case PersonalUsage usage: return usage.UsageId;
                case AccountCharge charge: return charge.UsageId;
                case AccountCredit { CreditId: { } creditId }: return creditId;
            }
        }

        return null;
    }
}
