-- The open billing errors of an account, apart from the resolved ones. Two reads went through billing_error_scope_idx,
-- which holds every error the account ever had (one per refused usage id: thousands after a few dry spells):
--  * a top-up resolving the open insufficient-balance errors read all of them: 20 ms of the shared commit for an
--    account with 200,000 errors behind it, to resolve none;
--  * listing an account's open errors (the console's default) walked back through the resolved ones to find them.
-- Both now read the open errors only (README, "Storage and concurrency": "A top-up after a dry spell").
-- Built CONCURRENTLY, so new billing errors (every refused usage) are not held up while it builds on a large table: the
-- migrator runs such a file outside a transaction, rebuilds an index an interrupted build left invalid, and records the
-- file once the index is valid (Grains/Storage/ConcurrentIndexBuild.cs). One statement only, nothing else in the file.
CREATE INDEX CONCURRENTLY IF NOT EXISTS billing_error_open_idx ON billing_error (scope, scope_id, error_type, seq) WHERE NOT resolved;
