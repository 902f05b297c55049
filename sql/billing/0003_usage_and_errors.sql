-- The one answer per usage id (I3). Its primary key is what makes a usage id charge at most once across
-- projects and users: every charge and every refusal inserts its row in the same statement as its effects.
CREATE TABLE usage_record (
    usage_id         uuid        PRIMARY KEY,
    outcome          text        NOT NULL CHECK (outcome IN ('charged', 'refused')),
    paid_by          text        CHECK (paid_by IN ('project', 'user')),
    account_id       uuid,
    cost             numeric     NOT NULL,
    currency         text        NOT NULL,
    input_tokens     bigint      NOT NULL,
    output_tokens    bigint      NOT NULL,
    balance_after    numeric,
    quota_used       numeric     NOT NULL DEFAULT 0,
    billing_error_id uuid,
    message          text,
    created_at       timestamptz NOT NULL
);

CREATE TABLE billing_error (
    id          uuid        PRIMARY KEY,
    seq         bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    scope       text        NOT NULL CHECK (scope IN ('project', 'user')),
    scope_id    uuid        NOT NULL,
    error_type  text        NOT NULL,
    message     text        NOT NULL,
    details     jsonb,
    resolved    boolean     NOT NULL DEFAULT false,
    resolved_at timestamptz,
    usage_id    uuid        UNIQUE, -- one billing error per refused usage (I5)
    created_at  timestamptz NOT NULL
);
CREATE INDEX billing_error_scope_idx ON billing_error (scope, scope_id, seq DESC);
