-- Every id column becomes VARCHAR(36) CHARACTER SET ascii COLLATE
-- ascii_bin (outbox.traceparent VARCHAR(55)), nullability and keys as
-- they were:
--   * byte-wise comparison, as the daemons compare ids: with the old
--     case-insensitive collation an upper-case twin of a processed id was
--     "already there" for the table and new for the worker (issue 14);
--   * VARCHAR, not CHAR(n): MariaDB Connector/C's binlog row decoder
--     cannot decode CHAR(n) columns (issue 18).
--
-- MariaDB cannot change a column's type in place, and ALTER TABLE's copy
-- blocks writes for the whole copy, so each table is converted ONLINE, as
-- pt-online-schema-change does it (README, "Database"):
--   1. an empty shadow table _mig009_<t>_new with the target columns
--      (CREATE TABLE ... LIKE: same indexes, generated column included);
--   2. three triggers on <t> (after delete, update, insert: in that
--      order, see below) that apply every change of <t> to the shadow;
--   3. a copy of the rows in primary-key order, in chunks of 10-50 ms
--      (READ COMMITTED, shared locks on the chunk's rows only, so that a
--      row is never copied while a writer changes it: _mig009_copy);
--   4. the shadow's AUTO_INCREMENT set to <t>'s (outbox.seq never goes
--      back), then one atomic RENAME TABLE <t> TO _mig009_<t>_old,
--      _mig009_<t>_new TO <t>: grants are by table name, so the roles of
--      006/008 apply to the new table unchanged;
--   5. the triggers and the old table dropped.
-- Writers wait only for the chunk that holds a row they write, and for the
-- metadata lock of the statements that create or drop the triggers and
-- swap the tables: each of those first tries without waiting (nobody
-- queues behind it), then waits at most 1 s at a time (writers queue
-- behind it for at most that), and is retried.
--
-- Run again after a failure, each table resumes or starts over: a table
-- that already has the target columns is only cleaned up; a shadow whose
-- three triggers all exist is kept (the triggers kept it current, the copy
-- is repeated and skips rows already there); anything else is dropped and
-- rebuilt.  A table with triggers or foreign keys of its own is refused
-- (they would stay with the old table): drop them, migrate, create them
-- again.  Killing outbox-migrate is safe at any point: the server ends
-- the session at its next progress row (at least one a second), every
-- step is either one atomic DDL or a transaction that rolls back.
--
-- Progress: a result row (step, table, n) at least once a second while
-- a table is copied or a lock awaited.  outbox-migrate reads and drops
-- them (watch SHOW PROCESSLIST, or COUNT(*) of the shadow, instead); they
-- keep its DB_IO_TIMEOUT from firing during a long copy, and let the
-- server notice a client that is gone.

DELIMITER //

CREATE OR REPLACE PROCEDURE _mig009_say(IN step VARCHAR(64),
    IN tbl VARCHAR(64), IN n BIGINT)
    SELECT step AS step, tbl AS `table`, n AS n, SYSDATE(6) AS at//

-- Runs one statement of dynamic SQL (names of this file only).
CREATE OR REPLACE PROCEDURE _mig009_run(IN stmt TEXT)
BEGIN
    SET @_mig009_sql = stmt;
    PREPARE _mig009_stmt FROM @_mig009_sql;
    EXECUTE _mig009_stmt;
    DEALLOCATE PREPARE _mig009_stmt;
END//

-- Runs a statement that needs an exclusive metadata lock on a table the
-- daemons use: 20 tries without waiting (50 ms apart), then tries that
-- wait at most 1 s (0.5 s apart), 100 in all, then gives up.
CREATE OR REPLACE PROCEDURE _mig009_ddl(IN tbl VARCHAR(64), IN stmt TEXT)
BEGIN
    DECLARE tries INT DEFAULT 0;
    DECLARE busy INT DEFAULT 0;
    DECLARE saved BIGINT DEFAULT @@SESSION.lock_wait_timeout;
    DECLARE CONTINUE HANDLER FOR 1205, 1213 SET busy = 1;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
        SET SESSION lock_wait_timeout = saved;
        RESIGNAL;
    END;

    SET @_mig009_sql = stmt;
    PREPARE _mig009_ddl_stmt FROM @_mig009_sql;
    try: LOOP
        SET busy = 0;
        SET SESSION lock_wait_timeout = IF(tries < 20, 0, 1);
        EXECUTE _mig009_ddl_stmt;
        IF busy = 0 THEN
            LEAVE try;
        END IF;
        SET tries = tries + 1;
        IF tries >= 100 THEN
            SET @_mig009_msg = CONCAT('009: ', tbl, ' stayed in use: ',
                LEFT(stmt, 60), '... not done; run outbox-migrate again');
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @_mig009_msg;
        END IF;
        IF tries >= 20 THEN
            CALL _mig009_say('waiting for a lock', tbl, tries);
        END IF;
        DO SLEEP(IF(tries < 20, 0.05, 0.5));
    END LOOP;
    DEALLOCATE PREPARE _mig009_ddl_stmt;
    SET SESSION lock_wait_timeout = saved;
END//

-- 1 when tables a and b of this schema have the same columns (name,
-- position, type, nullability, collation, default, generation).
CREATE OR REPLACE FUNCTION _mig009_same_columns(a VARCHAR(64),
    b VARCHAR(64)) RETURNS INT
    READS SQL DATA
BEGIN
    DECLARE na, nb, same INT;

    SELECT COUNT(*) INTO na FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = a;
    SELECT COUNT(*) INTO nb FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = b;
    SELECT COUNT(*) INTO same
      FROM information_schema.COLUMNS x JOIN information_schema.COLUMNS y
        ON y.TABLE_SCHEMA = x.TABLE_SCHEMA AND y.TABLE_NAME = b
       AND y.COLUMN_NAME = x.COLUMN_NAME
       AND y.ORDINAL_POSITION = x.ORDINAL_POSITION
       AND y.COLUMN_TYPE = x.COLUMN_TYPE
       AND y.IS_NULLABLE = x.IS_NULLABLE
       AND y.COLLATION_NAME <=> x.COLLATION_NAME
       AND y.COLUMN_DEFAULT <=> x.COLUMN_DEFAULT
       AND y.GENERATION_EXPRESSION <=> x.GENERATION_EXPRESSION
     WHERE x.TABLE_SCHEMA = DATABASE() AND x.TABLE_NAME = a;
    RETURN na > 0 AND na = nb AND same = na;
END//

-- 1 when table t exists in this schema.
CREATE OR REPLACE FUNCTION _mig009_exists(t VARCHAR(64)) RETURNS INT
    READS SQL DATA
    RETURN EXISTS (SELECT 1 FROM information_schema.TABLES
                    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = t)//

-- Copies the rows of t into nt in primary-key order, in chunks of 10 to
-- 50 ms; rows inserted after the triggers exist are there already, so
-- the copy stops at the largest key it saw at the start.
--
-- A chunk is one READ COMMITTED transaction in two statements:
--   1. its rows of t, read with shared record locks (no gap locks: inserts
--      go on; a writer of one of those rows waits for this chunk, and the
--      chunk waits at most 1 s for a writer, then gives its locks back
--      and is tried again, smaller), into a temporary table of this
--      session;
--   2. from there into nt, rows the triggers put there already left as
--      they are (they are as new: the shared locks of 1 keep every writer
--      of those rows out until the commit).
-- Two statements, because INSERT ... SELECT holds nt's table-level
-- AUTO-INC lock (innodb_autoinc_lock_mode 1) until it ends, and every
-- trigger's insert into nt waits for that lock: it must never be held
-- while waiting for a row of t (measured: writers stalled and
-- deadlocked when it was).  Statement 2 waits for no row lock of t.
CREATE OR REPLACE PROCEDURE _mig009_copy(IN t VARCHAR(64),
    IN nt VARCHAR(64), IN pk VARCHAR(64), IN cols TEXT)
BEGIN
    DECLARE n INT DEFAULT 500;
    DECLARE copied BIGINT DEFAULT 0;
    DECLARE busy INT DEFAULT 0;
    DECLARE retries INT DEFAULT 0;
    DECLARE ms, got BIGINT;
    DECLARE t0, said DATETIME(6);
    DECLARE saved_iso VARCHAR(32) DEFAULT @@SESSION.tx_isolation;
    DECLARE saved_wait BIGINT DEFAULT @@SESSION.innodb_lock_wait_timeout;
    DECLARE CONTINUE HANDLER FOR 1205, 1213 SET busy = 1;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
        ROLLBACK;
        SET SESSION tx_isolation = saved_iso;
        SET SESSION innodb_lock_wait_timeout = saved_wait;
        RESIGNAL;
    END;

    SET SESSION tx_isolation = 'READ-COMMITTED';
    SET SESSION innodb_lock_wait_timeout = 1;
    CALL _mig009_run(CONCAT('CREATE OR REPLACE TEMPORARY TABLE ',
        '`_mig009_chunk` LIKE `', nt, '`'));

    SET @_mig009_max = NULL, @_mig009_lo = NULL;
    CALL _mig009_run(CONCAT('SELECT MAX(`', pk, '`), MIN(`', pk, '`) ',
        'INTO @_mig009_max, @_mig009_lo FROM `', t, '`'));
    SET @_mig009_bound = CONCAT('SELECT `', pk, '` INTO @_mig009_hi FROM `',
        t, '` FORCE INDEX (PRIMARY) WHERE `', pk, '` >= ? AND `', pk,
        '` <= ? ORDER BY `', pk, '` LIMIT 1 OFFSET ?');
    SET @_mig009_read = CONCAT('INSERT INTO `_mig009_chunk` (', cols, ') ',
        'SELECT ', cols, ' FROM `', t, '` FORCE INDEX (PRIMARY) WHERE `', pk,
        '` >= ? AND `', pk, '` <= ? LOCK IN SHARE MODE');
    SET @_mig009_write = CONCAT('INSERT INTO `', nt, '` (', cols, ') ',
        'SELECT ', cols, ' FROM `_mig009_chunk` ',
        'ON DUPLICATE KEY UPDATE `', nt, '`.`', pk, '` = `', nt, '`.`', pk,
        '`');
    SET @_mig009_next = CONCAT('SELECT `', pk, '` INTO @_mig009_lo FROM `',
        t, '` FORCE INDEX (PRIMARY) WHERE `', pk, '` > ? AND `', pk,
        '` <= ? ORDER BY `', pk, '` LIMIT 1');
    PREPARE _mig009_bound FROM @_mig009_bound;
    PREPARE _mig009_read FROM @_mig009_read;
    PREPARE _mig009_write FROM @_mig009_write;
    PREPARE _mig009_next FROM @_mig009_next;
    SET said = SYSDATE(6);
    WHILE @_mig009_lo IS NOT NULL DO
        SET t0 = SYSDATE(6);
        SET @_mig009_hi = NULL, @_mig009_off = n - 1;
        EXECUTE _mig009_bound USING @_mig009_lo, @_mig009_max, @_mig009_off;
        IF @_mig009_hi IS NULL THEN
            SET @_mig009_hi = @_mig009_max;
        END IF;
        SET busy = 0, got = 0;
        -- Not DELETE: the deleted rows of a temporary table are never
        -- purged, and every chunk would scan all the earlier ones
        -- (measured: a copy 6 times slower at a million rows).
        TRUNCATE TABLE `_mig009_chunk`;
        START TRANSACTION;
        EXECUTE _mig009_read USING @_mig009_lo, @_mig009_hi;
        IF busy = 0 THEN
            EXECUTE _mig009_write;
            SET got = ROW_COUNT();
        END IF;
        IF busy = 0 THEN
            COMMIT;
        ELSE
            ROLLBACK;
        END IF;
        IF busy = 0 THEN
            SET copied = copied + GREATEST(got, 0), retries = 0;
            SET @_mig009_lo = NULL;
            EXECUTE _mig009_next USING @_mig009_hi, @_mig009_max;
            -- Towards 10-50 ms a chunk: a writer of one of its rows
            -- waits that long at most; longer chunks copy little faster.
            SET ms = TIMESTAMPDIFF(MICROSECOND, t0, SYSDATE(6)) DIV 1000;
            IF ms < 10 THEN
                SET n = LEAST(n * 2, 5000);
            ELSEIF ms > 50 THEN
                SET n = GREATEST(n DIV 2, 50);
            END IF;
        ELSE
            -- A row lock held too long, or a deadlock: this chunk gave
            -- its locks back; again, smaller, a little later.
            SET n = GREATEST(n DIV 2, 50), retries = retries + 1;
            IF retries >= 300 THEN
                SET @_mig009_msg = CONCAT('009: ', t, ': rows stayed ',
                    'locked for minutes; run outbox-migrate again');
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @_mig009_msg;
            END IF;
            CALL _mig009_say('chunk retried', t, copied);
            DO SLEEP(0.1);
        END IF;
        IF TIMESTAMPDIFF(MICROSECOND, said, SYSDATE(6)) > 1000000 THEN
            CALL _mig009_say('copying', t, copied);
            SET said = SYSDATE(6);
        END IF;
    END WHILE;
    DEALLOCATE PREPARE _mig009_bound;
    DEALLOCATE PREPARE _mig009_read;
    DEALLOCATE PREPARE _mig009_write;
    DEALLOCATE PREPARE _mig009_next;
    DROP TEMPORARY TABLE `_mig009_chunk`;
    SET SESSION tx_isolation = saved_iso;
    SET SESSION innodb_lock_wait_timeout = saved_wait;
END//

-- Converts table t of this schema to the columns that "ALTER TABLE t
-- <spec>" would give it, online (see the top of this file).
CREATE OR REPLACE PROCEDURE _mig009_convert(IN t VARCHAR(64), IN spec TEXT)
BEGIN
    DECLARE nt VARCHAR(64) DEFAULT CONCAT('_mig009_', t, '_new');
    DECLARE ot VARCHAR(64) DEFAULT CONCAT('_mig009_', t, '_old');
    DECLARE rt VARCHAR(64) DEFAULT CONCAT('_mig009_', t, '_ref');
    DECLARE tg VARCHAR(64) DEFAULT CONCAT('_mig009_', t, '_');
    DECLARE pk VARCHAR(64);
    DECLARE cols, vals, sets TEXT;
    DECLARE npk, ntrig, ours INT;
    DECLARE ai BIGINT;

    SELECT COUNT(*), MAX(COLUMN_NAME) INTO npk, pk
      FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = t
       AND INDEX_NAME = 'PRIMARY';
    IF npk <> 1 THEN
        SET @_mig009_msg = CONCAT('009: ', t, ' has no one-column ',
            'primary key');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @_mig009_msg;
    END IF;
    SELECT COUNT(*), SUM(TRIGGER_NAME IN (CONCAT(tg, 'ai'), CONCAT(tg, 'au'),
           CONCAT(tg, 'ad')))
      INTO ntrig, ours
      FROM information_schema.TRIGGERS
     WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = t;
    IF ntrig > IFNULL(ours, 0) THEN
        SET @_mig009_msg = CONCAT('009: ', t, ' has triggers of its own: ',
            'drop them, migrate, create them again');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @_mig009_msg;
    END IF;
    -- A foreign key would follow the renamed old table, not the new one.
    IF EXISTS (SELECT 1 FROM information_schema.REFERENTIAL_CONSTRAINTS
                WHERE CONSTRAINT_SCHEMA = DATABASE()
                  AND (TABLE_NAME = t OR REFERENCED_TABLE_NAME = t)) THEN
        SET @_mig009_msg = CONCAT('009: ', t, ' has foreign keys: drop ',
            'them, migrate, create them again');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @_mig009_msg;
    END IF;

    -- The target shape: an empty copy of t, altered.
    CALL _mig009_run(CONCAT('DROP TABLE IF EXISTS `', rt, '`'));
    CALL _mig009_run(CONCAT('CREATE TABLE `', rt, '` LIKE `', t, '`'));
    CALL _mig009_run(CONCAT('ALTER TABLE `', rt, '` ', spec));

    IF _mig009_same_columns(t, rt) THEN
        -- Done before (this run's or an earlier one's swap): clean up.
        CALL _mig009_run(CONCAT('DROP TABLE `', rt, '`'));
        IF ours > 0 OR _mig009_exists(ot) OR _mig009_exists(nt) THEN
            CALL _mig009_say('cleaning up', t, 0);
        END IF;
        CALL _mig009_ddl(t, CONCAT('DROP TRIGGER IF EXISTS `', tg, 'ai`'));
        CALL _mig009_ddl(t, CONCAT('DROP TRIGGER IF EXISTS `', tg, 'au`'));
        CALL _mig009_ddl(t, CONCAT('DROP TRIGGER IF EXISTS `', tg, 'ad`'));
        CALL _mig009_run(CONCAT('DROP TABLE IF EXISTS `', ot, '`, `', nt,
            '`'));
    ELSE
        IF _mig009_exists(ot) THEN
            SET @_mig009_msg = CONCAT('009: ', ot, ' exists but ', t,
                ' was not converted: look at both before going on');
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @_mig009_msg;
        END IF;
        SELECT GROUP_CONCAT('`', COLUMN_NAME, '`' ORDER BY ORDINAL_POSITION),
               GROUP_CONCAT('NEW.`', COLUMN_NAME, '`'
                            ORDER BY ORDINAL_POSITION),
               GROUP_CONCAT('`', COLUMN_NAME, '` = VALUES(`', COLUMN_NAME,
                            '`)' ORDER BY ORDINAL_POSITION)
          INTO cols, vals, sets
          FROM information_schema.COLUMNS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = t
           AND IS_GENERATED = 'NEVER';
        IF ours = 3 AND _mig009_exists(nt) AND _mig009_same_columns(nt, rt)
        THEN
            -- An earlier run's shadow, kept current by its triggers.
            CALL _mig009_say('resuming', t, 0);
            CALL _mig009_run(CONCAT('DROP TABLE `', rt, '`'));
        ELSE
            -- Triggers first: none may outlive the shadow it writes to.
            CALL _mig009_ddl(t, CONCAT('DROP TRIGGER IF EXISTS `', tg,
                'ai`'));
            CALL _mig009_ddl(t, CONCAT('DROP TRIGGER IF EXISTS `', tg,
                'au`'));
            CALL _mig009_ddl(t, CONCAT('DROP TRIGGER IF EXISTS `', tg,
                'ad`'));
            CALL _mig009_run(CONCAT('DROP TABLE IF EXISTS `', nt, '`'));
            CALL _mig009_run(CONCAT('RENAME TABLE `', rt, '` TO `', nt,
                '`'));
            CALL _mig009_say('triggers', t, 0);
            -- Upserts, not REPLACE: a duplicate primary key then takes a
            -- record lock, where REPLACE takes a next-key lock that makes
            -- concurrent writers deadlock.
            -- Delete, update, then insert: each is a statement of its
            -- own, and writers go on between them.  A row gets into the
            -- shadow only through the update or insert trigger (or the
            -- copy, after all three exist), so every later change of it
            -- finds its trigger there.  Insert first, a row inserted then
            -- marked published (or deleted) before the next trigger
            -- existed stayed unpublished (or came back) in the shadow,
            -- and the copy leaves rows already there as they are.
            CALL _mig009_ddl(t, CONCAT('CREATE TRIGGER `', tg, 'ad` ',
                'AFTER DELETE ON `', t, '` FOR EACH ROW ',
                'DELETE FROM `', nt, '` WHERE `', pk, '` = OLD.`', pk,
                '`'));
            CALL _mig009_ddl(t, CONCAT('CREATE TRIGGER `', tg, 'au` ',
                'AFTER UPDATE ON `', t, '` FOR EACH ROW BEGIN ',
                'IF NOT (CAST(OLD.`', pk, '` AS BINARY) <=> ',
                'CAST(NEW.`', pk, '` AS BINARY)) THEN ',
                'DELETE FROM `', nt, '` WHERE `', pk, '` = OLD.`', pk, '`; ',
                'END IF; ',
                'INSERT INTO `', nt, '` (', cols, ') VALUES (', vals, ') ',
                'ON DUPLICATE KEY UPDATE ', sets, '; END'));
            CALL _mig009_ddl(t, CONCAT('CREATE TRIGGER `', tg, 'ai` ',
                'AFTER INSERT ON `', t, '` FOR EACH ROW ',
                'INSERT INTO `', nt, '` (', cols, ') VALUES (', vals, ') ',
                'ON DUPLICATE KEY UPDATE ', sets));
        END IF;

        CALL _mig009_say('copying', t, 0);
        CALL _mig009_copy(t, nt, pk, cols);

        -- seq values already handed out (rows deleted or rolled back
        -- since) are never handed out again.
        SELECT AUTO_INCREMENT INTO ai FROM information_schema.TABLES
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = t;
        IF ai IS NOT NULL THEN
            CALL _mig009_ddl(nt, CONCAT('ALTER TABLE `', nt, '` ',
                'AUTO_INCREMENT = ', ai));
        END IF;
        CALL _mig009_say('swapping', t, 0);
        CALL _mig009_ddl(t, CONCAT('RENAME TABLE `', t, '` TO `', ot, '`, `',
            nt, '` TO `', t, '`'));
        -- The triggers went with the old table: nobody writes there.
        CALL _mig009_ddl(ot, CONCAT('DROP TRIGGER `', tg, 'ai`'));
        CALL _mig009_ddl(ot, CONCAT('DROP TRIGGER `', tg, 'au`'));
        CALL _mig009_ddl(ot, CONCAT('DROP TRIGGER `', tg, 'ad`'));
        CALL _mig009_run(CONCAT('DROP TABLE `', ot, '`'));
        CALL _mig009_say('done', t, 0);
    END IF;
END//

DELIMITER ;

CALL _mig009_convert('customers',
    'MODIFY id VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL');
CALL _mig009_convert('outbox',
    'MODIFY message_id VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin '
    'NOT NULL, MODIFY traceparent VARCHAR(55) CHARACTER SET ascii '
    'COLLATE ascii_bin NULL');
CALL _mig009_convert('processed_messages',
    'MODIFY message_id VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin '
    'NOT NULL');
CALL _mig009_convert('welcome_emails',
    'MODIFY customer_id VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin '
    'NOT NULL, MODIFY message_id VARCHAR(36) CHARACTER SET ascii '
    'COLLATE ascii_bin NOT NULL');
CALL _mig009_convert('idempotency_keys',
    'MODIFY customer_id VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin '
    'NOT NULL');

DROP PROCEDURE _mig009_convert;
DROP PROCEDURE _mig009_copy;
DROP PROCEDURE _mig009_ddl;
DROP PROCEDURE _mig009_run;
DROP PROCEDURE _mig009_say;
DROP FUNCTION _mig009_same_columns;
DROP FUNCTION _mig009_exists;
