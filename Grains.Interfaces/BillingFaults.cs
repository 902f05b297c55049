namespace Billing;

// Faults that cross a grain boundary. Database exceptions (Npgsql) have no Orleans codec, so a grain that let one
// escape would reach its caller as a CodecNotFoundException; the silo's fault filter turns them into these two
// types instead, keeping the original in the silo's log. Expected outcomes stay BillingResult values.

/// <summary>
/// Retryable: storage was unreachable or the outcome of a write is unknown (connection lost, server restarting,
/// timeout, deadlock). Retrying with the same usage id / credit id is safe; the gateway answers 503.
/// </summary>
[GenerateSerializer, Alias("Billing.BillingUnavailableException")]
public sealed class BillingUnavailableException : Exception
{
    public BillingUnavailableException()
        : base("Billing storage is temporarily unavailable; retry with the same id.")
    {
    }

    public BillingUnavailableException(string message)
        : base(message)
    {
    }

    public BillingUnavailableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Not retryable: the operation fails deterministically (the database refused it as data, e.g. a CHECK or unique
/// violation that a retry would repeat). It was not applied; the gateway answers 500 without internals.
/// </summary>
[GenerateSerializer, Alias("Billing.BillingOperationFailedException")]
public sealed class BillingOperationFailedException : Exception
{
    public BillingOperationFailedException()
        : base("The operation cannot be completed as sent and was not applied; retrying it will not help.")
    {
    }

    public BillingOperationFailedException(string message)
        : base(message)
    {
    }

    public BillingOperationFailedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
