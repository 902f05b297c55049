-- Accounts: the seed's tables and columns, plus a version (= sequence number of the newest history row).
-- CHECKs hold invariant I2 in the database itself: no negative balance, no quota over-use.
CREATE TABLE user_billing (
    "user"        uuid        PRIMARY KEY,
    balance       numeric     NOT NULL CHECK (balance >= 0),
    currency      text        NOT NULL DEFAULT 'USD',
    is_pro        boolean     NOT NULL DEFAULT false,
    monthly_quota numeric     NOT NULL DEFAULT 0 CHECK (monthly_quota >= 0),
    month_used    numeric     NOT NULL DEFAULT 0 CHECK (month_used >= 0 AND month_used <= monthly_quota),
    cycle_start   timestamptz,
    cycle_end     timestamptz,
    version       bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE project_billing (
    project                uuid        PRIMARY KEY,
    "user"                 uuid        NOT NULL, -- the creator
    balance                numeric     NOT NULL CHECK (balance >= 0),
    currency               text        NOT NULL DEFAULT 'USD',
    initial_credit_granted boolean     NOT NULL DEFAULT false,
    is_pro                 boolean     NOT NULL DEFAULT false,
    monthly_quota          numeric     NOT NULL DEFAULT 0 CHECK (monthly_quota >= 0),
    month_used             numeric     NOT NULL DEFAULT 0 CHECK (month_used >= 0 AND month_used <= monthly_quota),
    cycle_start            timestamptz,
    cycle_end              timestamptz,
    version                bigint      NOT NULL DEFAULT 0,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);
CREATE INDEX project_billing_creator_idx ON project_billing ("user");
