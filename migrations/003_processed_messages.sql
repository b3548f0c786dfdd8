-- Messages the worker has handled: the insert of the id and the handler's
-- effect commit together, so a redelivered message is seen as a duplicate.
CREATE TABLE IF NOT EXISTS processed_messages (
    message_id    CHAR(36) CHARACTER SET ascii NOT NULL,
    event_name    VARCHAR(64) CHARACTER SET ascii NOT NULL,
    processed_at  DATETIME(6) NOT NULL,
    PRIMARY KEY (message_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
