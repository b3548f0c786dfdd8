-- The relay's poll stays cheap whatever waits for a later retry, and rows
-- the relay gave up on are parked.
--
-- A row refused by the broker gets next_attempt_at in the future; one it
-- gave up on after RELAY_MAX_ATTEMPTS gets parked_at and next_attempt_at
-- '9999-12-31' (so that no poll reaches it) until an operator releases
-- it.  ix_outbox_due (published_at, next_attempt_at, seq) serves both
-- halves of the poll (relay/poll.c): fresh rows (next_attempt_at NULL) in
-- seq order, and retries that are due (next_attempt_at <= now); rows
-- waiting for a later retry, and parked rows, are never read.  It also
-- serves every "published_at IS NULL" count, as ix_outbox_pending did.
-- Both changes are online (InnoDB: instant column, index built while the
-- table takes writes).
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS parked_at DATETIME(6) NULL
    AFTER next_attempt_at, ALGORITHM = INSTANT;
ALTER TABLE outbox ADD INDEX IF NOT EXISTS
    ix_outbox_due (published_at, next_attempt_at, seq),
    ALGORITHM = INPLACE, LOCK = NONE;
ALTER TABLE outbox DROP INDEX IF EXISTS ix_outbox_pending,
    ALGORITHM = INPLACE, LOCK = NONE;
