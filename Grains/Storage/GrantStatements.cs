using Billing.Accounts;

namespace Billing.Storage;

/// <summary>
/// The grant parts of the ledger's statements (<see cref="LedgerStatements"/>): new grants, changed grants and the
/// entries of the commit's rows, each a CTE of the same one statement, written only when the account part (the gate)
/// wrote — so grants move with the account's version guard and group commit, without a lock of their own.
/// </summary>
public static class GrantStatements
{
    /// <summary>Database text of a grant status (the <c>state</c> column).</summary>
    public static string StateOf(GrantStatus status) => status switch
    {
        GrantStatus.Scheduled => "scheduled",
        GrantStatus.Active => "active",
        GrantStatus.Depleted => "depleted",
        GrantStatus.Expired => "expired",
        GrantStatus.Voided => "voided",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    public static GrantStatus StatusOf(string state) => state switch
    {
        "scheduled" => GrantStatus.Scheduled,
        "active" => GrantStatus.Active,
        "depleted" => GrantStatus.Depleted,
        "expired" => GrantStatus.Expired,
        "voided" => GrantStatus.Voided,
        _ => throw new InvalidOperationException($"Unknown grant state '{state}'."),
    };

    public static string CategoryText(GrantCategory category) => category == GrantCategory.Promotional ? "promotional" : "paid";

    public static GrantCategory CategoryOf(string text) => text == "promotional" ? GrantCategory.Promotional : GrantCategory.Paid;

    /// <summary>
    /// The CTEs that write <paramref name="writes"/>: (name, SQL) pairs to add to a statement's WITH list.
    /// <paramref name="now"/> is the placeholder of the statement's time; <paramref name="condition"/> narrows the gate.
    /// </summary>
    public static (string Name, string Sql)[] Parts<TInput>(
        SqlParameters<TInput> p, AccountTable table, string account, string now, Func<TInput, GrantWrites?> writes,
        string gate, string? condition = null, bool withChanges = true)
    {
        var scope = p.Value("grant_scope", "text", _ => table.Scope);
        var created = new ArrayInsert<TInput, CreditGrant>(p, "credit_grant", "grants", c => writes(c)?.Created ?? [])
            .Column("grant_id", "uuid", g => g.GrantId)
            .Shared("scope", scope)
            .Shared("account_id", account)
            .Column("category", "text", g => CategoryText(g.Category))
            .Column("priority", "integer", g => g.Priority)
            .Column("amount", "numeric", g => g.Amount)
            .Column("remaining", "numeric", g => g.Remaining)
            .Column("currency", "text", g => g.Currency)
            .Column("effective_at", "timestamptz", g => g.EffectiveAt.UtcDateTime)
            .Column("expires_at", "timestamptz", g => g.ExpiresAt?.UtcDateTime)
            .Column("state", "text", g => StateOf(g.Status))
            .Column("description", "text", g => g.Description)
            .Column("credit_id", "uuid", g => g.CreditId)
            .Column("created_at", "timestamptz", g => g.CreatedAt.UtcDateTime)
            .Shared("updated_at", now)
            .Sql(gate, condition);
        var entries = new ArrayInsert<TInput, GrantEntry>(p, "credit_grant_entry", "grant_entries", c => writes(c)?.Entries ?? [])
            .Shared("scope", scope)
            .Shared("account_id", account)
            .Column("seq", "bigint", e => e.Seq)
            .Column("ord", "integer", e => e.Order)
            .Column("grant_id", "uuid", e => e.GrantId)
            .Column("amount", "numeric", e => e.Amount)
            .Sql(gate, condition);
        if (!withChanges) return [("grants_new", created), ("grant_entries", entries)];

        var ids = p.Array("changed_grants.grant_id", "uuid", c => writes(c)?.Changed ?? [], g => g.GrantId);
        var remaining = p.Array("changed_grants.remaining", "numeric", c => writes(c)?.Changed ?? [], g => g.Remaining);
        var states = p.Array("changed_grants.state", "text", c => writes(c)?.Changed ?? [], g => StateOf(g.Status));
        var changed = $"""
            UPDATE credit_grant g SET remaining = r.remaining, state = r.state, updated_at = {now}
            FROM {gate}, unnest({ids}, {remaining}, {states}) AS r(grant_id, remaining, state)
            WHERE g.grant_id = r.grant_id AND g.scope = {scope} AND g.account_id = {account}
            """;
        return [("grants_new", created), ("grants_changed", changed), ("grant_entries", entries)];
    }
}
