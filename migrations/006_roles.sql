-- Least privilege: one role per daemon, holding only what that daemon
-- does.  Login users (with passwords) are created by whoever runs the
-- server (scripts/infra.sh; docker-compose's init script) and given these
-- roles as their default role.  Running this file needs the right to
-- create roles (the migrating user is the database's administrator).
CREATE ROLE IF NOT EXISTS outbox_app_role;
CREATE ROLE IF NOT EXISTS outbox_relay_role;
CREATE ROLE IF NOT EXISTS outbox_worker_role;
CREATE ROLE IF NOT EXISTS outbox_audit_role;

-- app: creates customers and their outbox rows, reads customers back,
-- keeps idempotency keys.  It cannot read the outbox or any effect.
GRANT SELECT, INSERT ON customers TO outbox_app_role;
GRANT INSERT ON outbox TO outbox_app_role;
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO outbox_app_role;

-- relay: the outbox table only (find, mark, prune).
GRANT SELECT, UPDATE, DELETE ON outbox TO outbox_relay_role;

-- worker: its dedup table and its effect; it cannot touch customers.
-- (Migration 011 adds DELETE on processed_messages: its retention.)
GRANT SELECT, INSERT ON processed_messages TO outbox_worker_role;
GRANT SELECT, INSERT, UPDATE ON welcome_emails TO outbox_worker_role;

-- audit: reads everything it reconciles.
GRANT SELECT ON customers TO outbox_audit_role;
GRANT SELECT ON outbox TO outbox_audit_role;
GRANT SELECT ON processed_messages TO outbox_audit_role;
GRANT SELECT ON welcome_emails TO outbox_audit_role;
GRANT SELECT ON idempotency_keys TO outbox_audit_role;
