-- A read-only analyst role and user for current ClickHouse (SQL access
-- control, 20.5+). It is not a migration: run it once as an administrator,
--   clickhouse-client --multiquery --param_db=… < analyst_role.sql
-- or `epiwatch migrate --analyst-password …`, which renders {db} and applies it.
-- ClickHouse 18.16 has no SQL roles: deploy/local/clickhouse.sh writes the
-- equivalent users.xml entry (profile readonly, allow_databases).
--
-- SELECT covers the *_store tables too: the views read them with the
-- invoker's rights.

-- requires: 20.5
CREATE ROLE IF NOT EXISTS epiwatch_analyst;

-- requires: 20.5
GRANT SELECT ON {db}.* TO epiwatch_analyst;

-- requires: 20.5
CREATE USER IF NOT EXISTS epiwatch_analyst_user IDENTIFIED WITH sha256_password BY '{analyst_password}' DEFAULT ROLE epiwatch_analyst SETTINGS readonly = 2;
