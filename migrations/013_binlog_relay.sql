-- The relay's binlog mode (RELAY_MODE=binlog; README, "Binlog mode").
--
-- outbox_relay_position: how far the binlog relay has published, one row
-- (id = 1), written in one statement per batch, never per message:
--   gtid      the GTID list (domain-server-seq, one per domain, comma
--             separated) of the last transaction whose outbox rows were
--             all confirmed by the broker or parked: a restart reads the
--             binlog from the transaction after it;
--   last_seq  the highest outbox seq published or parked up to that
--             transaction (NULL before the first); seq is not a position
--             (binlog order is commit order), it tells the metrics and the
--             audit which rows are behind the position;
--   updated_at  when it was written.
-- In binlog mode rows are not updated per message: published_at stays
-- NULL, and "published" means "in a transaction at or before gtid".
CREATE TABLE IF NOT EXISTS outbox_relay_position (
    id         TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    gtid       VARCHAR(1024) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    last_seq   BIGINT UNSIGNED NULL,
    updated_at DATETIME(6) NOT NULL,
    CONSTRAINT ck_outbox_relay_position_one CHECK (id = 1)
) ENGINE = InnoDB;

-- The relay stores its position as its least-privilege login.
GRANT SELECT, INSERT, UPDATE ON outbox_relay_position TO outbox_relay_role;
GRANT SELECT ON outbox_relay_position TO outbox_audit_role;
GRANT SELECT ON outbox_relay_position TO outbox_admin_role;

-- The binlog reader: a login of its own (scripts/db-users.sql), not the
-- relay's.  REPLICATION SLAVE lets it stream the binary log, which holds
-- every change of every table of the server: its holder can read all of
-- them.  BINLOG MONITOR lets it check the server's binlog settings and
-- files (SHOW BINARY LOGS, SHOW MASTER STATUS).  It has no table grant:
-- it cannot SELECT or write any table.
CREATE ROLE IF NOT EXISTS outbox_binlog_role;
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO outbox_binlog_role;
