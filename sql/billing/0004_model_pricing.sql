-- Prices per million tokens. Rows are never edited: a new price is a new row with its own effective_from.
CREATE TABLE model_pricing (
    uid                      uuid        PRIMARY KEY,
    model_version_id         uuid        NOT NULL,
    input_price_per_million  numeric     NOT NULL CHECK (input_price_per_million >= 0),
    output_price_per_million numeric     NOT NULL CHECK (output_price_per_million >= 0),
    currency                 text        NOT NULL,
    effective_from           timestamptz NOT NULL,
    created_at               timestamptz NOT NULL,
    CHECK (input_price_per_million > 0 OR output_price_per_million > 0)
);
CREATE INDEX model_pricing_model_idx ON model_pricing (model_version_id, effective_from DESC);
