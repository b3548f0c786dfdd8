-- The durability barrier (common/durable.c): a daemon that derives an
-- answer from another transaction's fresh rows (the relay publishing an
-- outbox row, the app answering 409 or replaying a response, the worker
-- acking a message already processed) first commits a change of its own
-- row here.  The redo log is one ordered stream: once that commit is on
-- disk, so is every transaction it could see.  One row per name (a
-- daemon, or a pool thread), so that barriers never wait for each other.
CREATE TABLE IF NOT EXISTS durability_barrier (
    name        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    n           BIGINT UNSIGNED NOT NULL,
    touched_at  DATETIME(6) NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;

GRANT SELECT, INSERT, UPDATE ON durability_barrier TO outbox_app_role;
GRANT SELECT, INSERT, UPDATE ON durability_barrier TO outbox_relay_role;
GRANT SELECT, INSERT, UPDATE ON durability_barrier TO outbox_worker_role;
GRANT SELECT ON durability_barrier TO outbox_audit_role;
