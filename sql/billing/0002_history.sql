-- Ledgers: append-only. An account's balance is the sum of its rows' amounts (I1), its month_used the sum
-- of their quota_used. seq numbers an account's rows 1, 2, 3…; the account row's version is the newest seq.
CREATE TABLE user_billing_history (
    uid              uuid        PRIMARY KEY,
    "user"           uuid        NOT NULL REFERENCES user_billing ("user"),
    seq              bigint      NOT NULL,
    amount           numeric     NOT NULL,
    quota_used       numeric     NOT NULL DEFAULT 0,
    currency         text        NOT NULL,
    reason           text        NOT NULL,
    balance_after    numeric     NOT NULL,
    month_used_after numeric     NOT NULL DEFAULT 0,
    usage_id         uuid,
    project          uuid,       -- the project a fallback charge paid for
    model_id         uuid,
    input_tokens     bigint,
    output_tokens    bigint,
    credit_id        uuid,
    extra            jsonb,
    created_at       timestamptz NOT NULL,
    UNIQUE ("user", seq)
);
CREATE UNIQUE INDEX user_billing_history_usage_uq ON user_billing_history ("user", usage_id) WHERE usage_id IS NOT NULL;
CREATE UNIQUE INDEX user_billing_history_credit_uq ON user_billing_history ("user", credit_id) WHERE credit_id IS NOT NULL;

CREATE TABLE project_billing_history (
    uid              uuid        PRIMARY KEY,
    project          uuid        NOT NULL REFERENCES project_billing (project),
    seq              bigint      NOT NULL,
    amount           numeric     NOT NULL,
    quota_used       numeric     NOT NULL DEFAULT 0,
    currency         text        NOT NULL,
    reason           text        NOT NULL,
    balance_after    numeric     NOT NULL,
    month_used_after numeric     NOT NULL DEFAULT 0,
    usage_id         uuid,
    "user"           uuid,       -- the user involved (the payer of a fallback)
    model_id         uuid,
    input_tokens     bigint,
    output_tokens    bigint,
    credit_id        uuid,
    extra            jsonb,
    created_at       timestamptz NOT NULL,
    UNIQUE (project, seq)
);
CREATE UNIQUE INDEX project_billing_history_usage_uq ON project_billing_history (project, usage_id) WHERE usage_id IS NOT NULL;
CREATE UNIQUE INDEX project_billing_history_credit_uq ON project_billing_history (project, credit_id) WHERE credit_id IS NOT NULL;

-- Corrections are new rows, never edits of old ones.
CREATE FUNCTION billing_history_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'billing history is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER user_billing_history_append_only BEFORE UPDATE OR DELETE ON user_billing_history
    FOR EACH ROW EXECUTE FUNCTION billing_history_is_append_only();
CREATE TRIGGER project_billing_history_append_only BEFORE UPDATE OR DELETE ON project_billing_history
    FOR EACH ROW EXECUTE FUNCTION billing_history_is_append_only();
