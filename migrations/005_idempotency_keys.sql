-- Idempotency-Key of POST /customers: the request it came with (to tell a
-- replay from a conflicting reuse) and the response to replay.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    idem_key       VARBINARY(255) NOT NULL,
    request_email  VARCHAR(254) NOT NULL,
    request_name   VARCHAR(255) NOT NULL,
    status         SMALLINT UNSIGNED NOT NULL,
    customer_id    CHAR(36) CHARACTER SET ascii NOT NULL,
    response_body  TEXT NOT NULL,
    created_at     DATETIME(6) NOT NULL,
    PRIMARY KEY (idem_key),
    KEY ix_idempotency_keys_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
