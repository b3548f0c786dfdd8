-- ix_outbox_due sorts the unpublished rows after the published ones.
--
-- ix_outbox_due (published_at, next_attempt_at, seq) put the unpublished
-- rows (published_at NULL: NULL sorts first) right before the oldest
-- published ones, which are the retention's next rows to delete
-- (relay/retention.c).  The relay's poll (relay/poll.c) reads the
-- unpublished rows with a locking read, and such a read ends on the
-- first entry past its range:
--   - it kept that entry locked until its commit: the retention's chunk
--     waited for the relay's batch (about 400 waits in a 30 s run of
--     make bench with history);
--   - a locking read steps over every delete-marked entry on its way,
--     with a look into the primary key for each: until the purge caught
--     up with a retention's sweep, every poll read the rows the sweep had
--     deleted (3,000 to 7,000 pages a poll, against 2).
-- Sorted by published_at DESC (MariaDB 10.8 and later; NULL then sorts
-- last), the newest published rows come first, the oldest after them,
-- and the unpublished ones at the end: the poll's reads start past the
-- published rows and end on an unpublished row or at the index's end,
-- never on a row the retention deletes.  Every query keeps its plan: the
-- poll's equality on published_at IS NULL and its order (next_attempt_at,
-- seq) are the same, and the retention reads the oldest published rows
-- backwards (tests/it_relay_sessions.c, "poll cost").
--
-- Online: the new index is built while the table takes writes
-- (ALGORITHM = INPLACE, LOCK = NONE) and replaces the old one at the
-- end, in one statement.  Run again (a crash before schema_migrations
-- recorded it), the index is already descending and nothing happens.
DELIMITER //
CREATE OR REPLACE PROCEDURE _mig014_due()
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS
                    WHERE TABLE_SCHEMA = DATABASE()
                      AND TABLE_NAME = 'outbox'
                      AND INDEX_NAME = 'ix_outbox_due'
                      AND COLUMN_NAME = 'published_at'
                      AND COLLATION = 'D') THEN
        ALTER TABLE outbox DROP INDEX IF EXISTS ix_outbox_due,
            ADD INDEX ix_outbox_due (published_at DESC, next_attempt_at, seq),
            ALGORITHM = INPLACE, LOCK = NONE;
    END IF;
END//
DELIMITER ;

CALL _mig014_due();
DROP PROCEDURE _mig014_due;
