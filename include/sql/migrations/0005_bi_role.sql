-- A read-only role for BI tools (issue 8): the NOLOGIN role inboxsync_bi may read the contract
-- tables and views (schema inboxsync) and the dbt marts (schema inboxsync_marts), now and in the
-- future, and write nothing. Give a person or a BI tool a login in it:
--     CREATE ROLE metabase LOGIN PASSWORD '...' IN ROLE inboxsync_bi;
--
-- Roles belong to the whole PostgreSQL cluster, grants to one database: the role is created once
-- (by whichever warehouse migrates first), the grants in every warehouse database.
--
-- inboxsync.grant_bi_access() does the work. When the warehouse user may not create roles (no
-- CREATEROLE, as on some managed services), the migration still succeeds, without the grants, and
-- warns: an administrator creates the role and then runs SELECT inboxsync.grant_bi_access().

-- The marts' schema, created here so its grants can be set before dbt first builds it (dbt's
-- profile schema, see dbt/dbt_project.yml and inboxsync.marts.MARTS_SCHEMA).
CREATE SCHEMA IF NOT EXISTS inboxsync_marts;

CREATE OR REPLACE FUNCTION inboxsync.grant_bi_access() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    marts_owner name;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'inboxsync_bi') THEN
        IF NOT EXISTS (
            SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)
        ) THEN
            RAISE WARNING 'role inboxsync_bi does not exist and % may not create roles: %',
                current_user, 'create it as an administrator (CREATE ROLE inboxsync_bi NOLOGIN),'
                ' then run SELECT inboxsync.grant_bi_access()';
            RETURN false;
        END IF;
        BEGIN
            CREATE ROLE inboxsync_bi NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another warehouse database's migration created it at the same moment
        END;
    END IF;

    -- The contract tables and views, and every table a later migration adds.
    GRANT USAGE ON SCHEMA inboxsync TO inboxsync_bi;
    GRANT SELECT ON ALL TABLES IN SCHEMA inboxsync TO inboxsync_bi;
    ALTER DEFAULT PRIVILEGES IN SCHEMA inboxsync GRANT SELECT ON TABLES TO inboxsync_bi;

    -- The marts: dbt rebuilds each mart table on every run, so new tables must be readable too,
    -- whether dbt runs as this user or as the schema's owner.
    GRANT USAGE ON SCHEMA inboxsync_marts TO inboxsync_bi;
    GRANT SELECT ON ALL TABLES IN SCHEMA inboxsync_marts TO inboxsync_bi;
    ALTER DEFAULT PRIVILEGES IN SCHEMA inboxsync_marts GRANT SELECT ON TABLES TO inboxsync_bi;
    SELECT r.rolname INTO marts_owner
    FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
    WHERE n.nspname = 'inboxsync_marts';
    IF marts_owner <> current_user AND pg_has_role(current_user, marts_owner, 'MEMBER') THEN
        EXECUTE format(
            'ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA inboxsync_marts'
            ' GRANT SELECT ON TABLES TO inboxsync_bi',
            marts_owner
        );
    END IF;
    RETURN true;
END
$$;

SELECT inboxsync.grant_bi_access();
