-- Two of billing_hold's unique indexes served no read and guarded nothing another constraint does not already guard;
-- each cost an index insert at placement and another at capture (a capture rewrites the row, and the new row version
-- gets an entry in every index). Without them a hold + capture costs PostgreSQL ≈ 10 % less (docs/performance.md, "billing_hold without its two redundant unique indexes").
--  * seq: an identity column is unique by construction, and every read that pages by seq goes through
--    billing_hold_account_idx (account_id, seq DESC).
--  * usage_id: a capture's usage id is the primary key of the usage_record row the same statement inserts (every
--    capture, late or not, charges through a usage record), so a usage id already used by another usage or another
--    hold's capture fails that statement all the same; the grain then answers the capture as a conflict
--    (HoldSettling.UsageIdTaken), as before.
ALTER TABLE billing_hold DROP CONSTRAINT billing_hold_seq_key;
ALTER TABLE billing_hold DROP CONSTRAINT billing_hold_usage_id_key;
