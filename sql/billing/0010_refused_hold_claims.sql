-- A refused hold placement claims its hold id, as a refused usage claims its usage id (usage_record): the refusal is
-- stored as a billing_hold row with status 'refused' (never a hold: it reserves nothing, is never listed, captured or
-- voided), written in the same statement as its billing error. billing_hold's primary key then makes the first stored
-- outcome of a hold id, a hold or a refusal, the answer of every copy of the placement: a copy still running when a
-- retry was refused can no longer place the hold afterwards (its insert meets the claim), nor can a refusal be stored
-- for a hold id that was placed (its insert meets the hold).
ALTER TABLE billing_hold DROP CONSTRAINT billing_hold_status_check;
ALTER TABLE billing_hold ADD CONSTRAINT billing_hold_status_check
    CHECK (status IN ('active', 'captured', 'voided', 'expired', 'refused'));
-- The refusal's insufficient_balance billing error (the one a retry answers with).
ALTER TABLE billing_hold ADD COLUMN billing_error_id uuid;
ALTER TABLE billing_hold ADD CONSTRAINT billing_hold_refusal_check CHECK ((status = 'refused') = (billing_error_id IS NOT NULL));
