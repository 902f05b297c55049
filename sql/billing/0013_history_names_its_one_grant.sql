-- A history row that moved one grant by its whole amount (almost every charge, every grant_credit, grant_expired and
-- grant_voided) names that grant in its own grant_id instead of writing a credit_grant_entry row: the entry row was
-- ≈ 20 % of PostgreSQL's work per usage (docs/performance.md, "The grant entry row"). credit_grant_entry keeps the
-- rows that moved two grants or more, one entry per grant as before, and the rows written before this migration.
-- Adding a nullable column without a default rewrites nothing. The foreign key costs ≈ 10 % of PostgreSQL's work per
-- HOT usage (docs/performance.md, "The grant entry row"), kept as the entries' is: no ledger row may point at nothing.
ALTER TABLE user_billing_history ADD COLUMN grant_id uuid REFERENCES credit_grant (grant_id);
ALTER TABLE project_billing_history ADD COLUMN grant_id uuid REFERENCES credit_grant (grant_id);

-- What each history row moved on each grant, wherever it is written: the one place to read the allocation (G1, G2).
-- A row's own grant_id moved the row's amount, as its only entry (ord 0).
CREATE VIEW credit_grant_movement AS
SELECT scope, account_id, seq, ord, grant_id, amount FROM credit_grant_entry
UNION ALL
SELECT 'user', "user", seq, 0, grant_id, amount FROM user_billing_history WHERE grant_id IS NOT NULL
UNION ALL
SELECT 'project', project, seq, 0, grant_id, amount FROM project_billing_history WHERE grant_id IS NOT NULL;
