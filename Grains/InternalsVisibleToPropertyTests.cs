using System.Runtime.CompilerServices;

// The ledger properties drive the account's real batch decisions (LedgerBatch and the operations' Decide), not a copy.
[assembly: InternalsVisibleTo("Billing.Properties.Tests")]
