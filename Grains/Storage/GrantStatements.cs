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
    /// The CTEs that write the grant changes of a group's commits (<see cref="LedgerCommit.GrantWrites"/>): (name, SQL)
    /// pairs to add to a statement's WITH list. <paramref name="now"/> is the SQL of the statement's time;
    /// <paramref name="condition"/> narrows the gate. <paramref name="withEntries"/>: whether any row moved two grants
    /// or more (<see cref="GrantWrites.Entries"/>); a row that moved one names it in its own <c>grant_id</c>.
    /// </summary>
    public static (string Name, string Sql)[] Parts(
        SqlParameters<LedgerCommitGroup> p, AccountTable table, string now, string gate, string? condition = null, bool withChanges = true,
        bool withEntries = true)
    {
        var scope = p.Value("grant_scope", "text", _ => table.Scope);
        var created = new ArrayInsert<LedgerCommitGroup, CreditGrant>(p, "credit_grant", "grants", g => g.Rows("grants_new", c => c.GrantWrites.Created))
            .Column("grant_id", "uuid", g => g.GrantId)
            .Shared("scope", scope)
            .Shared("account_id", ArrayInsert<LedgerCommitGroup, CreditGrant>.Owner)
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
        // Declared only when written: a statement binds every parameter it declares.
        (string, string)[] entryPart = withEntries
            ? [("grant_entries", new ArrayInsert<LedgerCommitGroup, GrantEntry>(p, "credit_grant_entry", "grant_entries", g => g.Rows("grant_entries", c => c.GrantWrites.Entries))
                .Shared("scope", scope)
                .Shared("account_id", ArrayInsert<LedgerCommitGroup, GrantEntry>.Owner)
                .Column("seq", "bigint", e => e.Seq)
                .Column("ord", "integer", e => e.Order)
                .Column("grant_id", "uuid", e => e.GrantId)
                .Column("amount", "numeric", e => e.Amount)
                .Sql(gate, condition))]
            : [];
        if (!withChanges) return [("grants_new", created), .. entryPart];

        IReadOnlyList<Owned<CreditGrant>> Changed(LedgerCommitGroup g) => g.Rows("grants_changed", c => c.GrantWrites.Changed);
        var ids = p.Array("changed_grants.grant_id", "uuid", Changed, g => g.Row.GrantId);
        var remaining = p.Array("changed_grants.remaining", "numeric", Changed, g => g.Row.Remaining);
        var states = p.Array("changed_grants.state", "text", Changed, g => StateOf(g.Row.Status));
        var owners = p.Array("changed_grants.owner_id", "uuid", Changed, g => g.AccountId);
        var changed = $"""
            UPDATE credit_grant g SET remaining = r.remaining, state = r.state, updated_at = {now}
            FROM unnest({ids}, {remaining}, {states}, {owners}) AS r(grant_id, remaining, state, owner_id)
                 JOIN {gate} ON {gate}.account_id = r.owner_id
            WHERE g.grant_id = r.grant_id AND g.scope = {scope} AND g.account_id = r.owner_id
            """;
        return [("grants_new", created), ("grants_changed", changed), .. entryPart];
    }
}
