-- Usage summaries (GET /v1/usage/summary) on large ledgers: an hourly rollup of the usage history rows, kept by
-- statement-level triggers on the two history tables (so every writer of usage rows — usage, capture, whatever the
-- statement — keeps it, in the same transaction, with no change to the ledger statement). A 31-day summary reads at
-- most 744 rollup rows per model instead of every history row; the partial ends of a range that does not start or
-- end on a whole hour are summed from the history rows themselves through the index below. numeric sums are
-- exact: the rollup's totals are exactly the sums of the history rows. The reason filters must stay identical to
-- those of Grains/Storage/UsageSummaryStore.cs (a project's spend: ai_usage; a user's: ai_usage_personal and
-- ai_usage_user_fallback; a project's zero-amount fallback marker is not spend).
CREATE TABLE usage_hourly (
    scope         text        NOT NULL CHECK (scope IN ('project', 'user')),
    account       uuid        NOT NULL,
    hour          timestamptz NOT NULL,
    model_id      uuid        NOT NULL, -- the nil UUID for a usage row without a model (none is written today)
    currency      text        NOT NULL,
    requests      bigint      NOT NULL,
    input_tokens  numeric     NOT NULL,
    output_tokens numeric     NOT NULL,
    cost          numeric     NOT NULL,
    PRIMARY KEY (scope, account, hour, model_id, currency)
);

CREATE INDEX project_billing_history_usage_time_idx ON project_billing_history (project, created_at) WHERE reason = 'ai_usage';
CREATE INDEX user_billing_history_usage_time_idx ON user_billing_history ("user", created_at)
    WHERE reason IN ('ai_usage_personal', 'ai_usage_user_fallback');

-- One upsert per statement: the new usage rows grouped by account, hour, model and currency.
CREATE FUNCTION project_usage_hourly_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_hourly AS u (scope, account, hour, model_id, currency, requests, input_tokens, output_tokens, cost)
    SELECT 'project', project, date_bin('1 hour', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
           coalesce(model_id, '00000000-0000-0000-0000-000000000000'), currency,
           count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), sum(quota_used - amount)
    FROM new_rows WHERE reason = 'ai_usage'
    GROUP BY 2, 3, 4, 5
    ON CONFLICT (scope, account, hour, model_id, currency) DO UPDATE SET
        requests = u.requests + EXCLUDED.requests, input_tokens = u.input_tokens + EXCLUDED.input_tokens,
        output_tokens = u.output_tokens + EXCLUDED.output_tokens, cost = u.cost + EXCLUDED.cost;
    RETURN NULL;
END $$;

CREATE FUNCTION user_usage_hourly_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_hourly AS u (scope, account, hour, model_id, currency, requests, input_tokens, output_tokens, cost)
    SELECT 'user', "user", date_bin('1 hour', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
           coalesce(model_id, '00000000-0000-0000-0000-000000000000'), currency,
           count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), sum(quota_used - amount)
    FROM new_rows WHERE reason IN ('ai_usage_personal', 'ai_usage_user_fallback')
    GROUP BY 2, 3, 4, 5
    ON CONFLICT (scope, account, hour, model_id, currency) DO UPDATE SET
        requests = u.requests + EXCLUDED.requests, input_tokens = u.input_tokens + EXCLUDED.input_tokens,
        output_tokens = u.output_tokens + EXCLUDED.output_tokens, cost = u.cost + EXCLUDED.cost;
    RETURN NULL;
END $$;

CREATE TRIGGER project_billing_history_usage_hourly AFTER INSERT ON project_billing_history
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION project_usage_hourly_add();
CREATE TRIGGER user_billing_history_usage_hourly AFTER INSERT ON user_billing_history
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION user_usage_hourly_add();

-- The history written before this migration.
INSERT INTO usage_hourly (scope, account, hour, model_id, currency, requests, input_tokens, output_tokens, cost)
SELECT 'project', project, date_bin('1 hour', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       coalesce(model_id, '00000000-0000-0000-0000-000000000000'), currency,
       count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), sum(quota_used - amount)
FROM project_billing_history WHERE reason = 'ai_usage'
GROUP BY 2, 3, 4, 5;
INSERT INTO usage_hourly (scope, account, hour, model_id, currency, requests, input_tokens, output_tokens, cost)
SELECT 'user', "user", date_bin('1 hour', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       coalesce(model_id, '00000000-0000-0000-0000-000000000000'), currency,
       count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), sum(quota_used - amount)
FROM user_billing_history WHERE reason IN ('ai_usage_personal', 'ai_usage_user_fallback')
GROUP BY 2, 3, 4, 5;
