-- scripts/db-users.sql - one login per daemon, each holding only its role
-- (grants: migrations/006_roles.sql).  The passwords are those of
-- scripts/roles.env (development values).  Run by docker-compose.yml as an
-- init script of the db service, and by scripts/infra.sh on every start.
-- Idempotent.
CREATE ROLE IF NOT EXISTS outbox_app_role;
CREATE USER IF NOT EXISTS 'outbox_app'@'%' IDENTIFIED BY 'app-123456';
ALTER USER 'outbox_app'@'%' IDENTIFIED BY 'app-123456';
GRANT outbox_app_role TO 'outbox_app'@'%';
SET DEFAULT ROLE outbox_app_role FOR 'outbox_app'@'%';
CREATE ROLE IF NOT EXISTS outbox_relay_role;
CREATE USER IF NOT EXISTS 'outbox_relay'@'%' IDENTIFIED BY 'relay-123456';
ALTER USER 'outbox_relay'@'%' IDENTIFIED BY 'relay-123456';
GRANT outbox_relay_role TO 'outbox_relay'@'%';
SET DEFAULT ROLE outbox_relay_role FOR 'outbox_relay'@'%';
CREATE ROLE IF NOT EXISTS outbox_worker_role;
CREATE USER IF NOT EXISTS 'outbox_worker'@'%' IDENTIFIED BY 'worker-123456';
ALTER USER 'outbox_worker'@'%' IDENTIFIED BY 'worker-123456';
GRANT outbox_worker_role TO 'outbox_worker'@'%';
SET DEFAULT ROLE outbox_worker_role FOR 'outbox_worker'@'%';
CREATE ROLE IF NOT EXISTS outbox_audit_role;
CREATE USER IF NOT EXISTS 'outbox_audit'@'%' IDENTIFIED BY 'audit-123456';
ALTER USER 'outbox_audit'@'%' IDENTIFIED BY 'audit-123456';
GRANT outbox_audit_role TO 'outbox_audit'@'%';
SET DEFAULT ROLE outbox_audit_role FOR 'outbox_audit'@'%';
CREATE ROLE IF NOT EXISTS outbox_admin_role;
CREATE USER IF NOT EXISTS 'outbox_admin'@'%' IDENTIFIED BY 'admin-123456';
ALTER USER 'outbox_admin'@'%' IDENTIFIED BY 'admin-123456';
GRANT outbox_admin_role TO 'outbox_admin'@'%';
SET DEFAULT ROLE outbox_admin_role FOR 'outbox_admin'@'%';
-- The relay's binlog reader (binlog mode only; grants: migrations/013).
CREATE ROLE IF NOT EXISTS outbox_binlog_role;
CREATE USER IF NOT EXISTS 'outbox_binlog'@'%' IDENTIFIED BY 'binlog-123456';
ALTER USER 'outbox_binlog'@'%' IDENTIFIED BY 'binlog-123456';
GRANT outbox_binlog_role TO 'outbox_binlog'@'%';
SET DEFAULT ROLE outbox_binlog_role FOR 'outbox_binlog'@'%';
