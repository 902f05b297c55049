namespace Billing.Storage;

/// <summary>
/// The hold changes of one account commit: holds placed (inserted), holds ended (captured, voided, expired; updated)
/// and the billing errors of captures that fell short. <see cref="ExpectedHoldsVersion"/> guards the account row
/// with its version, so holds are written without row locks, like history.
/// </summary>
public sealed record HoldWrites(
    long ExpectedHoldsVersion,
    IReadOnlyList<HoldView> Inserted,
    IReadOnlyList<HoldView> Ended,
    IReadOnlyList<HoldCaptureReceipt> Shortfalls);

/// <summary>The parts of <see cref="LedgerStatements"/>' commit statement that write holds, gated on the account update.</summary>
internal static class HoldStatements
{
    /// <summary>The status of a refused placement's row: it claims the hold id and is never a hold (migration 0010).</summary>
    public const string RefusedStatus = "refused";

    public static string StatusName(HoldStatus status) => status switch
    {
        HoldStatus.Active => "active",
        HoldStatus.Captured => "captured",
        HoldStatus.Voided => "voided",
        _ => "expired",
    };

    public static HoldStatus ParseStatus(string status) => status switch
    {
        "active" => HoldStatus.Active,
        "captured" => HoldStatus.Captured,
        "voided" => HoldStatus.Voided,
        "expired" => HoldStatus.Expired,
        _ => throw new InvalidOperationException($"Unknown hold status {status}."),
    };

    public static (string Name, string Sql)[] CommitParts(SqlParameters<LedgerCommitGroup> p, AccountTable table, string now)
    {
        var scope = p.Value("hold_scope", "text", _ => table.Scope);
        var inserted = new ArrayInsert<LedgerCommitGroup, HoldView>(p, "billing_hold", "hold", g => g.Rows("hold_new", c => c.Holds?.Inserted))
            .Column("hold_id", "uuid", h => h.HoldId)
            .Shared("scope", scope)
            .Shared("account_id", ArrayInsert<LedgerCommitGroup, HoldView>.Owner)
            .Column("project_id", "uuid", h => h.ProjectId)
            .Column("user_id", "uuid", h => h.UserId)
            .Column("model_id", "uuid", h => h.ModelId)
            .Column("input_tokens", "bigint", h => h.InputTokens)
            .Column("max_output_tokens", "bigint", h => h.MaxOutputTokens)
            .Column("input_price_per_million", "numeric", h => h.InputPricePerMillion)
            .Column("output_price_per_million", "numeric", h => h.OutputPricePerMillion)
            .Column("amount", "numeric", h => h.Amount)
            .Column("currency", "text", h => h.Currency)
            .Column("ttl_seconds", "integer", h => h.TtlSeconds)
            .Column("status", "text", h => StatusName(h.Status))
            .Column("expires_at", "timestamptz", h => h.ExpiresAt.UtcDateTime)
            .Column("created_at", "timestamptz", h => h.CreatedAt.UtcDateTime)
            .Column("ended_at", "timestamptz", h => h.EndedAt?.UtcDateTime)
            .Column("usage_id", "uuid", h => h.Capture?.UsageId)
            .Column("used_input_tokens", "bigint", h => h.Capture?.InputTokens)
            .Column("used_output_tokens", "bigint", h => h.Capture?.OutputTokens)
            .Column("cost", "numeric", h => h.Capture?.Cost)
            .Column("charged", "numeric", h => h.Capture?.Charged)
            .Column("released", "numeric", h => h.Capture?.Released)
            .Column("shortfall", "numeric", h => h.Capture?.Shortfall)
            .Column("late", "boolean", h => h.Capture?.Late)
            .Column("balance_after", "numeric", h => h.Capture?.BalanceAfter)
            .Column("quota_used", "numeric", h => h.Capture?.QuotaUsed)
            .Column("shortfall_error_id", "uuid", h => h.Capture?.ShortfallErrorId)
            .Sql(gate: "acct");

        // An ended hold: its status and, for a capture, its receipt. Only this account's holds (its own rows).
        var ended = new EndedHolds(p)
            .Set("hold_id", "uuid", h => h.HoldId)
            .Set("status", "text", h => StatusName(h.Status))
            .Set("ended_at", "timestamptz", h => h.EndedAt?.UtcDateTime)
            .Set("usage_id", "uuid", h => h.Capture?.UsageId)
            .Set("used_input_tokens", "bigint", h => h.Capture?.InputTokens)
            .Set("used_output_tokens", "bigint", h => h.Capture?.OutputTokens)
            .Set("cost", "numeric", h => h.Capture?.Cost)
            .Set("charged", "numeric", h => h.Capture?.Charged)
            .Set("released", "numeric", h => h.Capture?.Released)
            .Set("shortfall", "numeric", h => h.Capture?.Shortfall)
            .Set("late", "boolean", h => h.Capture?.Late)
            .Set("balance_after", "numeric", h => h.Capture?.BalanceAfter)
            .Set("quota_used", "numeric", h => h.Capture?.QuotaUsed)
            .Set("shortfall_error_id", "uuid", h => h.Capture?.ShortfallErrorId);
        var update = ended.Sql();

        var errors = new ArrayInsert<LedgerCommitGroup, HoldCaptureReceipt>(p, "billing_error", "shortfall", g => g.Rows("hold_err", c => c.Holds?.Shortfalls))
            .Column("id", "uuid", r => r.ShortfallErrorId!.Value)
            .Shared("scope", scope)
            .Shared("scope_id", ArrayInsert<LedgerCommitGroup, HoldCaptureReceipt>.Owner)
            .Shared("error_type", "'capture_shortfall'")
            .Column("message", "text", r => Accounts.HoldLedger.ShortfallMessage(r))
            .Column("details", "text", r => System.Text.Json.JsonSerializer.Serialize(new
            {
                holdId = r.HoldId, usageId = r.UsageId, amount = r.Shortfall, cost = r.Cost, charged = r.Charged, held = r.Held, currency = r.Currency,
            }), cast: "jsonb")
            .Column("hold_id", "uuid", r => r.HoldId)
            .Shared("created_at", now)
            .Sql(gate: "acct");

        return [("hold_new", inserted), ("hold_end", update), ("hold_err", errors)];
    }

    /// <summary>The update of the ended holds: one array per column, each column set from it (hold_id matches).</summary>
    private sealed class EndedHolds(SqlParameters<LedgerCommitGroup> p)
    {
        private readonly List<(string Column, string Array)> columns = [];

        private static IReadOnlyList<Owned<HoldView>> Ended(LedgerCommitGroup g) => g.Rows("hold_end", c => c.Holds?.Ended);

        public EndedHolds Set<T>(string column, string type, Func<HoldView, T> value)
        {
            columns.Add((column, p.Array($"hold_end.{column}", type, Ended, h => value(h.Row))));
            return this;
        }

        public string Sql()
        {
            var assignments = string.Join(", ", columns.Where(c => c.Column != "hold_id").Select(c => c.Column + " = r." + c.Column));
            var owners = p.Array("hold_end.owner_id", "uuid", Ended, h => h.AccountId);
            var arrayPlaceholders = string.Join(", ", columns.Select(c => c.Array).Append(owners));
            var arrayColumns = string.Join(", ", columns.Select(c => c.Column).Append("owner_id"));
            return $"""
                UPDATE billing_hold h
                SET {assignments}
                FROM unnest({arrayPlaceholders}) AS r({arrayColumns}) JOIN acct ON acct.account_id = r.owner_id
                WHERE h.hold_id = r.hold_id AND h.account_id = r.owner_id
                """;
        }
    }
}
