-- The outbox: one row per event, written in the business transaction.
-- seq orders events; published_at stays NULL until the broker confirmed the
-- message.  ix_outbox_pending lets the relay find unpublished rows in seq
-- order without scanning published ones.
CREATE TABLE IF NOT EXISTS outbox (
    seq              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    message_id       CHAR(36) CHARACTER SET ascii NOT NULL,
    event_name       VARCHAR(64) CHARACTER SET ascii NOT NULL,
    payload          JSON NOT NULL,
    created_at       DATETIME(6) NOT NULL,
    published_at     DATETIME(6) NULL,
    attempts         INT UNSIGNED NOT NULL DEFAULT 0,
    last_error       VARCHAR(255) NULL,
    next_attempt_at  DATETIME(6) NULL,
    PRIMARY KEY (seq),
    UNIQUE KEY uq_outbox_message_id (message_id),
    KEY ix_outbox_pending (published_at, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
