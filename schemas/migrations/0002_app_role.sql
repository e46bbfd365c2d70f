-- Least privilege: the application (stream processor, workers, replay, CLI reads) connects as
-- autoglm_app, which may read and write rows but owns nothing and can run no DDL. Migrations
-- run as the owner role (AUTOGLM_DATABASE_ADMIN_URL). The role has no password here: on the
-- embedded server loopback connections are trusted; elsewhere `autoglm up` sets the password
-- given in DATABASE_URL (runtime/services/migrations.py: sync_app_password).
DO $$
BEGIN
    CREATE ROLE autoglm_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
EXCEPTION
    -- Roles are per cluster: another database (or a concurrent migration) made it already.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- No one but the owner creates objects in public (already the default since PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO autoglm_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON answers, feedback TO autoglm_app;
GRANT SELECT ON schema_migrations TO autoglm_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO autoglm_app;

-- Tables and sequences that later migrations create (as the role running them) get the same
-- row-level rights without repeating these lines.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO autoglm_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO autoglm_app;
