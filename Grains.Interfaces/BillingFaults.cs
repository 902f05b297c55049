namespace Billing;

/// <summary>A fault a retry can cure (the database or a silo is unavailable): the gateway answers 503.</summary>
[GenerateSerializer, Alias("Billing.BillingUnavailableException")]
public sealed class BillingUnavailableException : Exception
{
    public BillingUnavailableException(string message) : base(message)
    {
    }

    public BillingUnavailableException(string message, Exception? inner) : base(message, inner)
    {
    }
}

/// <summary>A fault a retry cannot cure (the ledger refused this one operation): the gateway answers 500 without internals.</summary>
[GenerateSerializer, Alias("Billing.BillingOperationFailedException")]
public sealed class BillingOperationFailedException : Exception
{
    public BillingOperationFailedException(string message) : base(message)
    {
    }

    public BillingOperationFailedException(string message, Exception? inner) : base(message, inner)
    {
    }
}
