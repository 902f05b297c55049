-- A late capture refused for balance claims its usage id, as a refused usage does: a 'refused' usage_record row
-- written in the same statement as its billing error, so usage_record's primary key makes the first stored outcome
-- of that usage id, the late charge or the refusal, the answer of every copy of the capture (a copy still running
-- when a retry was refused can no longer charge afterwards). Its billing error names the usage id (one per refused
-- usage, I5) and the hold; a refused placement's error and a capture's shortfall stay at most one per hold.
DROP INDEX billing_error_hold_uq;
CREATE UNIQUE INDEX billing_error_hold_uq ON billing_error (hold_id, error_type) WHERE hold_id IS NOT NULL AND usage_id IS NULL;
