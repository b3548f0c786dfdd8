-- outbox-admin (admin/): an operator's tool, with a login of its own
-- (scripts/db-users.sql) holding only this role.
--   status        counts and ages of outbox rows, the last handled time;
--   parked list   the rows the relay parked;
--   parked release  sets parked_at, attempts and next_attempt_at of
--                 chosen rows back (one UPDATE, by seq): those three
--                 columns only, so it can neither publish a row, nor
--                 change its payload, nor delete it.
-- It cannot touch customers, welcome emails or idempotency keys, and
-- cannot write processed_messages.
CREATE ROLE IF NOT EXISTS outbox_admin_role;
GRANT SELECT ON outbox TO outbox_admin_role;
GRANT UPDATE (parked_at, attempts, next_attempt_at) ON outbox
    TO outbox_admin_role;
GRANT SELECT ON processed_messages TO outbox_admin_role;
