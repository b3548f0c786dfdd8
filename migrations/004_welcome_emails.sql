-- The worker's effect for CustomerCreated: the welcome mail to send, one
-- per customer.
CREATE TABLE IF NOT EXISTS welcome_emails (
    customer_id  CHAR(36) CHARACTER SET ascii NOT NULL,
    message_id   CHAR(36) CHARACTER SET ascii NOT NULL,
    email        VARCHAR(254) NOT NULL,
    name         VARCHAR(255) NOT NULL,
    created_at   DATETIME(6) NOT NULL,
    sent_at      DATETIME(6) NULL,
    PRIMARY KEY (customer_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
