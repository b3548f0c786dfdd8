-- The worker's inbox retention (WORKER_PROCESSED_RETENTION_HOURS):
-- processed ids older than the retention are deleted, oldest first, in
-- chunks of 500 (worker/inbox_retention.c).  ix_processed_at finds them
-- without a scan of the whole table.  Online: the index is built while
-- the table takes writes (ALGORITHM = INPLACE, LOCK = NONE); run again,
-- the index is there and nothing happens.
ALTER TABLE processed_messages ADD INDEX IF NOT EXISTS
    ix_processed_at (processed_at),
    ALGORITHM = INPLACE, LOCK = NONE;

-- The pruner deletes as the worker's login: DELETE on its dedup table,
-- nothing more (a GRANT given twice is one grant).
GRANT DELETE ON processed_messages TO outbox_worker_role;
