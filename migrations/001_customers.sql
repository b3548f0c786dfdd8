-- Customers.  The email is kept as given; its unique key is on the
-- lower-cased form, so "A@x.io" and "a@x.io" are the same customer while
-- accents still differ (a _ci collation would also fold "é" into "e").
CREATE TABLE IF NOT EXISTS customers (
    id          CHAR(36) CHARACTER SET ascii NOT NULL,
    email       VARCHAR(254) NOT NULL,
    email_key   VARCHAR(254) AS (LOWER(email)) STORED,
    name        VARCHAR(255) NOT NULL,
    created_at  DATETIME(6) NOT NULL,
    updated_at  DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_customers_email (email_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
