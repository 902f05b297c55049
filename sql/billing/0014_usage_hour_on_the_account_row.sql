-- The usage summary's rollup leaves the history's triggers. Each commit of an account's usage rows upserted the
-- account's usage_hourly row through a statement trigger: ≈ 17 µs of PostgreSQL per SPREAD usage, ≈ 20 % of its work
-- (docs/performance.md, "The usage rollup on the account row"). Now the rows of the hour, model and currency an account
-- used last add up on its own row (usage_hour_*), which every commit updates anyway; when a usage row of another hour,
-- model or currency comes, the ledger statement closes the account's open hour into usage_hourly (the grains:
-- Grains/Accounts/UsageRollup.cs). usage_hourly plus the accounts' open hours are exactly the sums of the usage history
-- rows, as before (LedgerInvariants checks it). The rows written before this migration are already in usage_hourly.
-- A silo of an older version would write usage rows that neither keeps: stop them before applying this file.
ALTER TABLE user_billing
    ADD COLUMN usage_hour               timestamptz,
    ADD COLUMN usage_hour_model_id      uuid,
    ADD COLUMN usage_hour_currency      text,
    ADD COLUMN usage_hour_requests      bigint  NOT NULL DEFAULT 0,
    ADD COLUMN usage_hour_input_tokens  numeric NOT NULL DEFAULT 0,
    ADD COLUMN usage_hour_output_tokens numeric NOT NULL DEFAULT 0,
    ADD COLUMN usage_hour_cost          numeric NOT NULL DEFAULT 0;
ALTER TABLE project_billing
    ADD COLUMN usage_hour               timestamptz,
    ADD COLUMN usage_hour_model_id      uuid,
    ADD COLUMN usage_hour_currency      text,
    ADD COLUMN usage_hour_requests      bigint  NOT NULL DEFAULT 0,
    ADD COLUMN usage_hour_input_tokens  numeric NOT NULL DEFAULT 0,
    ADD COLUMN usage_hour_output_tokens numeric NOT NULL DEFAULT 0,
    ADD COLUMN usage_hour_cost          numeric NOT NULL DEFAULT 0;

DROP TRIGGER project_billing_history_usage_hourly ON project_billing_history;
DROP TRIGGER user_billing_history_usage_hourly ON user_billing_history;
DROP FUNCTION project_usage_hourly_add();
DROP FUNCTION user_usage_hourly_add();
