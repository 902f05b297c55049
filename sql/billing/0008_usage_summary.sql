-- Usage summaries (GET /v1/usage/summary): one partial covering index per history table, holding only the rows in
-- which the account paid for a usage, keyed by account and time and carrying every column the summary sums. A
-- 31-day summary is then an index-only range scan of that account's usage rows; credits, plan changes and a
-- project's zero-amount fallback markers are not in the index at all. The predicates must stay identical to the
-- filters in Grains/Storage/UsageSummaryStore.cs.
CREATE INDEX project_billing_history_usage_summary_idx ON project_billing_history (project, created_at)
    INCLUDE (model_id, currency, amount, quota_used, input_tokens, output_tokens)
    WHERE reason = 'ai_usage';

CREATE INDEX user_billing_history_usage_summary_idx ON user_billing_history ("user", created_at)
    INCLUDE (model_id, currency, amount, quota_used, input_tokens, output_tokens)
    WHERE reason IN ('ai_usage_personal', 'ai_usage_user_fallback');
