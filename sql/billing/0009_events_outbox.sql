-- Balance alerts, the transactional outbox of billing events, and webhook delivery (API.md "Balance alerts and
-- webhooks"; DESIGN.md E1, E2).

-- An account's alert thresholds (amounts of `available`). set_at_version: the account's version when they were set;
-- the E1 check compares crossings and events from the next row on.
CREATE TABLE account_alert (
    scope          text        NOT NULL CHECK (scope IN ('project', 'user')),
    scope_id       uuid        NOT NULL,
    thresholds     numeric[]   NOT NULL,
    set_at_version bigint      NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (scope, scope_id)
);

-- The outbox. Every row is inserted by the statement that makes the change it reports (E1). Readers page it by
-- (txid, seq) and only below the oldest transaction still running, so an event that commits late is never skipped.
CREATE TABLE billing_event (
    seq              bigint      GENERATED ALWAYS AS IDENTITY,
    txid             bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    id               uuid        NOT NULL UNIQUE,
    type             text        NOT NULL,
    scope            text        NOT NULL CHECK (scope IN ('project', 'user')),
    scope_id         uuid        NOT NULL,
    account_seq      bigint,     -- the history row that caused it (balance.low, balance.recovered)
    billing_error_id uuid,
    threshold        numeric,
    data             jsonb       NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (txid, seq)
);
CREATE INDEX billing_event_scope_idx ON billing_event (scope, scope_id, txid, seq);
CREATE INDEX billing_event_type_idx ON billing_event (type, txid, seq);
-- One balance.depleted, billing_error.created and billing_error.resolved per billing error.
CREATE UNIQUE INDEX billing_event_error_uq ON billing_event (billing_error_id, type) WHERE billing_error_id IS NOT NULL;

CREATE TABLE webhook_endpoint (
    id              uuid        PRIMARY KEY,
    url             text        NOT NULL,
    events          text[]      NOT NULL,
    secret          text        NOT NULL,
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text,
    -- The outbox position up to which events were fanned out into deliveries.
    cursor_txid     bigint      NOT NULL,
    cursor_seq      bigint      NOT NULL,
    created_at      timestamptz NOT NULL
);

-- One row per (endpoint, event): claimed by one silo at a time (FOR UPDATE SKIP LOCKED, then a lease).
CREATE TABLE webhook_delivery (
    endpoint_id     uuid        NOT NULL REFERENCES webhook_endpoint (id) ON DELETE CASCADE,
    event_id        uuid        NOT NULL,
    event_created_at timestamptz NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_by      text,
    claimed_until   timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_delivery_due_idx ON webhook_delivery (next_attempt_at) WHERE status = 'pending';
