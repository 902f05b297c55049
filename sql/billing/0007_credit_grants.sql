-- Issue 12: every credit is a grant (promotional or paid, with a priority and an optional expiry). An account's
-- balance is the sum of the remaining of its grants in effect (G1); what each history row took from or gave to a
-- grant is a credit_grant_entry row, so a grant's amount - remaining is explained by its entries (G2).
-- Both tables are written by the account's one ledger statement per group commit, guarded by its version.
CREATE TABLE credit_grant (
    grant_id     uuid        PRIMARY KEY,
    seq          bigint      GENERATED ALWAYS AS IDENTITY UNIQUE, -- paging, newest first
    scope        text        NOT NULL CHECK (scope IN ('project', 'user')),
    account_id   uuid        NOT NULL,
    category     text        NOT NULL CHECK (category IN ('promotional', 'paid')),
    priority     integer     NOT NULL CHECK (priority BETWEEN 0 AND 100),
    amount       numeric     NOT NULL CHECK (amount > 0),
    remaining    numeric     NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    currency     text        NOT NULL,
    effective_at timestamptz NOT NULL,
    expires_at   timestamptz CHECK (expires_at > effective_at),
    -- depleted: in effect with nothing left; expired and voided: ended with remaining 0.
    state        text        NOT NULL CHECK (state IN ('scheduled', 'active', 'depleted', 'expired', 'voided')),
    description  text,
    credit_id    uuid,       -- the top-up or automatic credit that made it, if any
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CHECK (state IN ('scheduled', 'active') OR remaining = 0),
    CHECK (state <> 'scheduled' OR remaining = amount)
);
CREATE INDEX credit_grant_account_idx ON credit_grant (scope, account_id, seq DESC);
-- What the grant clock looks for: grants to bring into effect and grants to expire.
CREATE INDEX credit_grant_due_effect_idx ON credit_grant (effective_at) WHERE state = 'scheduled';
CREATE INDEX credit_grant_due_expiry_idx ON credit_grant (expires_at) WHERE state = 'active' AND expires_at IS NOT NULL;

-- One row per (history row, grant) it moved: amount carries the history row's sign (a charge's entries add up to
-- its amount; a grant_credit's is +amount; a grant_expired's or grant_voided's is -remaining).
CREATE TABLE credit_grant_entry (
    scope      text    NOT NULL CHECK (scope IN ('project', 'user')),
    account_id uuid    NOT NULL,
    seq        bigint  NOT NULL,
    ord        integer NOT NULL, -- the grant's place in the row (spending order for a charge)
    grant_id   uuid    NOT NULL REFERENCES credit_grant (grant_id),
    amount     numeric NOT NULL,
    PRIMARY KEY (scope, account_id, seq, grant_id)
);
CREATE INDEX credit_grant_entry_grant_idx ON credit_grant_entry (grant_id);

-- Existing data: each account's balance becomes one paid grant without expiry, in effect since the account's last
-- change, so that an upgraded database keeps its balances, I1 (no history row is added) and G1.
INSERT INTO credit_grant (grant_id, scope, account_id, category, priority, amount, remaining, currency, effective_at,
                          state, description, created_at, updated_at)
SELECT md5('grant:user:' || "user"::text)::uuid, 'user', "user", 'paid', 50, balance, balance, currency, updated_at,
       'active', 'Balance before credit grants', updated_at, updated_at
FROM user_billing WHERE balance > 0;
INSERT INTO credit_grant (grant_id, scope, account_id, category, priority, amount, remaining, currency, effective_at,
                          state, description, created_at, updated_at)
SELECT md5('grant:project:' || project::text)::uuid, 'project', project, 'paid', 50, balance, balance, currency, updated_at,
       'active', 'Balance before credit grants', updated_at, updated_at
FROM project_billing WHERE balance > 0;
