-- A delivery's claims are counted apart from its attempts. Until now a claim counted as an attempt, so a silo that
-- stopped or died between claiming a delivery and recording its outcome used up one of the receiver's 8 attempts
-- (and moved its next wait a step along the schedule) without sending anything. Now `attempts` counts the outcomes
-- recorded, and `claims` every claim: `claims - attempts` of a claimed row are the claims lost with their silo, and a
-- delivery that keeps losing them (one whose send brings its silo down) is given up instead of retried forever.
-- A constant default: PostgreSQL adds the column without rewriting the table.
ALTER TABLE webhook_delivery ADD COLUMN claims integer NOT NULL DEFAULT 0;
-- The deliveries still to make counted their claims in `attempts`: they start with as many claims, none of them lost.
UPDATE webhook_delivery SET claims = attempts WHERE status = 'pending';
