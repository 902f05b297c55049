-- Issue 9, defect 2: a quota cycle keeps the day and time it was anchored on (the plan change that started it).
-- Each cycle runs from where the previous one ended to the anchor's day of the next month (clamped to that
-- month's length), so a cycle anchored on the 31st no longer drifts to the 28th after February.
-- Existing cycles are anchored where they started.
ALTER TABLE user_billing ADD COLUMN cycle_anchor timestamptz;
ALTER TABLE project_billing ADD COLUMN cycle_anchor timestamptz;
UPDATE user_billing SET cycle_anchor = cycle_start WHERE cycle_start IS NOT NULL;
UPDATE project_billing SET cycle_anchor = cycle_start WHERE cycle_start IS NOT NULL;

-- Issue 9, defect 3: which project took its creator's one first-project credit. The claim row is inserted by the
-- same statement as the project's account row, so a creation that fails claims nothing. The foreign key makes
-- a claim name a project that exists with that creator: a claim whose account insert did not happen (the
-- project was created concurrently for another creator) fails the whole statement instead of being kept.
ALTER TABLE project_billing ADD CONSTRAINT project_billing_project_creator_uq UNIQUE (project, "user");
CREATE TABLE first_project_credit (
    creator    uuid        PRIMARY KEY,
    project    uuid        NOT NULL UNIQUE,
    claimed_at timestamptz NOT NULL,
    FOREIGN KEY (project, creator) REFERENCES project_billing (project, "user")
);
-- Claims made so far: the project of each creator that holds the credit (the oldest, should there be several).
INSERT INTO first_project_credit (creator, project, claimed_at)
SELECT DISTINCT ON ("user") "user", project, created_at
FROM project_billing
WHERE initial_credit_granted
ORDER BY "user", created_at, project;
