-- Issue 11: holds. A hold reserves what an in-flight AI call can cost at most, on one payer account, until it is
-- captured (charged what was used), voided or expired. Every change of a hold is written by its payer account's
-- ledger statement (LedgerStatements.Commit), the same one statement per group commit as charges: the account row's
-- holds_seq moves with every hold change and guards it, as version guards history rows.
CREATE TABLE billing_hold (
    hold_id                 uuid        PRIMARY KEY,
    seq                     bigint      GENERATED ALWAYS AS IDENTITY UNIQUE, -- paging, newest first
    scope                   text        NOT NULL CHECK (scope IN ('project', 'user')), -- the payer's kind
    account_id              uuid        NOT NULL,  -- the payer, pinned at placement
    project_id              uuid,                  -- null for a personal hold
    user_id                 uuid        NOT NULL,
    model_id                uuid        NOT NULL,
    input_tokens            bigint      NOT NULL CHECK (input_tokens >= 0),
    max_output_tokens       bigint      NOT NULL CHECK (max_output_tokens >= 0),
    input_price_per_million  numeric    NOT NULL,  -- the price pinned at placement
    output_price_per_million numeric    NOT NULL,
    amount                  numeric     NOT NULL CHECK (amount >= 0),
    currency                text        NOT NULL,
    ttl_seconds             integer     NOT NULL CHECK (ttl_seconds BETWEEN 1 AND 86400),
    status                  text        NOT NULL CHECK (status IN ('active', 'captured', 'voided', 'expired')),
    expires_at              timestamptz NOT NULL,
    created_at              timestamptz NOT NULL,
    ended_at                timestamptz,           -- when it was captured, voided or expired
    -- The capture (also a late capture of an expired hold): its receipt, so a retry answers with it.
    usage_id                uuid        UNIQUE,
    used_input_tokens       bigint,
    used_output_tokens      bigint,
    cost                    numeric,               -- the full cost of the tokens used
    charged                 numeric CHECK (charged >= 0),
    released                numeric CHECK (released >= 0),
    shortfall               numeric CHECK (shortfall >= 0),
    late                    boolean,
    balance_after           numeric,
    quota_used              numeric,
    shortfall_error_id      uuid,
    CHECK ((status = 'active') = (ended_at IS NULL))
);
CREATE INDEX billing_hold_account_idx ON billing_hold (account_id, seq DESC);
-- The expiry scan of every silo: active holds past their expiry.
CREATE INDEX billing_hold_due_idx ON billing_hold (expires_at) WHERE status = 'active';

ALTER TABLE user_billing ADD COLUMN holds_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE project_billing ADD COLUMN holds_seq bigint NOT NULL DEFAULT 0;

-- A capture's history row names its hold.
ALTER TABLE user_billing_history ADD COLUMN hold_id uuid;
ALTER TABLE project_billing_history ADD COLUMN hold_id uuid;

-- Billing errors of holds (a refused placement or late capture: insufficient_balance; an over-capture:
-- capture_shortfall): at most one of each type per hold, so a retry stores no second one.
ALTER TABLE billing_error ADD COLUMN hold_id uuid;
CREATE UNIQUE INDEX billing_error_hold_uq ON billing_error (hold_id, error_type) WHERE hold_id IS NOT NULL;
