namespace Billing.Storage;

/// <summary>Where one kind of account lives: the seed's table names, and the column naming the other party.</summary>
public sealed record AccountTable(AccountKind Kind, string Accounts, string Key, string History, string Counterparty, string Scope)
{
    public static readonly AccountTable Users = new(AccountKind.User, "user_billing", "\"user\"", "user_billing_history", "project", BillingScopes.User);

    public static readonly AccountTable Projects = new(AccountKind.Project, "project_billing", "project", "project_billing_history", "\"user\"", BillingScopes.Project);

    public static AccountTable For(AccountKind kind) => kind == AccountKind.User ? Users : Projects;
}
