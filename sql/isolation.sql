-- Row-level security helpers for application tables. They run with the
-- caller's rights: ALTER TABLE and CREATE POLICY need the table's owner, and
-- the registry needs the administrator duty.
--
-- Every policy compares with (SELECT cortex_vault.current_org_id()): the
-- sub-select makes the planner evaluate the context once per query, as an
-- init plan, and use an index on the organization column.

CREATE FUNCTION cortex_vault._isolation_target(tbl regclass, col name, want text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    kind  "char";
    typ   text;
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION 'table and column must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = 'wrong_object_type',
            DETAIL = 'Row-level security applies to ordinary and partitioned tables only.';
    END IF;
    SELECT pg_catalog.format_type(a.atttypid, NULL) INTO typ
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column "%" of % does not exist', col, tbl
            USING ERRCODE = 'undefined_column';
    END IF;
    IF NOT typ = ANY (want) THEN
        RAISE EXCEPTION 'column "%" of % has type %, not %', col, tbl, typ,
            pg_catalog.array_to_string(want, ' or ')
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Isolation compares the column with the session''s context; '
                         'store it with the expected type.';
    END IF;
END
$fn$;

CREATE FUNCTION cortex_vault._has_policy(tbl regclass, policy name)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                   WHERE p.polrelid = tbl AND p.polname = policy)
$fn$;

-- Drops one of the helpers' policies when it is there.
CREATE FUNCTION cortex_vault._drop_policy(tbl regclass, policy name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF cortex_vault._has_policy(tbl, policy) THEN
        EXECUTE pg_catalog.format('DROP POLICY %I ON %s', policy, tbl);
    END IF;
END
$fn$;

CREATE FUNCTION cortex_vault.enable_org_isolation(tbl regclass, org_column name DEFAULT 'org_id')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    cond text;
BEGIN
    PERFORM cortex_vault._isolation_target(tbl, org_column, ARRAY['uuid']);
    cond := pg_catalog.format('%I = (SELECT cortex_vault.current_org_id())', org_column);

    -- Remember the table's own settings once, so disabling restores them.
    INSERT INTO cortex_vault.isolated_tables (relid, org_column, rls_was_enabled, rls_was_forced)
    SELECT c.oid, org_column, c.relrowsecurity, c.relforcerowsecurity
    FROM pg_catalog.pg_class c WHERE c.oid = tbl
    ON CONFLICT (relid) DO UPDATE SET org_column = EXCLUDED.org_column;

    EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    PERFORM cortex_vault._drop_policy(tbl, 'cortex_vault_org');
    EXECUTE pg_catalog.format(
        'CREATE POLICY cortex_vault_org ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
        'USING (%s) WITH CHECK (%s)', tbl, cond, cond);

    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = tbl AND a.attname = org_column
    ) THEN
        RAISE NOTICE 'no index of % leads with column "%"', tbl, org_column
            USING HINT = pg_catalog.format('CREATE INDEX ON %s (%I) keeps every isolated '
                                           'query from scanning the whole table.', tbl, org_column);
    END IF;
END
$fn$;

CREATE FUNCTION cortex_vault.enable_deployment_isolation(
    tbl regclass, deployment_column name DEFAULT 'deployment_id')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    ctx text := '(SELECT cortex_vault.current_deployment_id())';
BEGIN
    PERFORM cortex_vault._isolation_target(tbl, deployment_column,
                                           ARRAY['text', 'character varying']);
    IF NOT EXISTS (SELECT 1 FROM cortex_vault.isolated_tables WHERE relid = tbl) THEN
        RAISE EXCEPTION '% is not under organization isolation', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run cortex_vault.enable_org_isolation() on the table first.';
    END IF;
    UPDATE cortex_vault.isolated_tables SET deployment_column = $2 WHERE relid = tbl;

    -- Restrictive: it narrows the organization policy, never widens it. A row
    -- with a NULL deployment belongs to the whole organization; a session
    -- without a deployment in context acts for the whole organization.
    PERFORM cortex_vault._drop_policy(tbl, 'cortex_vault_deployment');
    EXECUTE pg_catalog.format(
        'CREATE POLICY cortex_vault_deployment ON %1$s AS RESTRICTIVE FOR ALL TO PUBLIC '
        'USING (%2$I IS NULL OR %3$s IS NULL OR %2$I = %3$s) '
        'WITH CHECK (%3$s IS NULL OR %2$I = %3$s)',
        tbl, deployment_column, ctx);
END
$fn$;

CREATE FUNCTION cortex_vault.disable_org_isolation(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    reg cortex_vault.isolated_tables;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO reg FROM cortex_vault.isolated_tables WHERE relid = tbl;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM cortex_vault._drop_policy(tbl, 'cortex_vault_deployment');
    PERFORM cortex_vault._drop_policy(tbl, 'cortex_vault_org');
    IF NOT reg.rls_was_forced THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', tbl);
    END IF;
    IF NOT reg.rls_was_enabled THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', tbl);
    END IF;
    DELETE FROM cortex_vault.isolated_tables WHERE relid = tbl;
END
$fn$;

CREATE FUNCTION cortex_vault.isolation_report()
RETURNS TABLE (table_name regclass, org_column name, rls_enabled boolean, rls_forced boolean,
               org_policy boolean, deployment_policy boolean, problems text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
WITH candidates AS (
    SELECT c.oid AS relid, c.relrowsecurity, c.relforcerowsecurity,
           coalesce(r.org_column, 'org_id'::name) AS col, r.relid IS NOT NULL AS registered
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN cortex_vault.isolated_tables r ON r.relid = c.oid
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'cortex_vault', 'pg_toast')
      AND (r.relid IS NOT NULL OR EXISTS (
            SELECT 1 FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND a.attnum > 0 AND NOT a.attisdropped))
),
facts AS (
    SELECT t.*,
        cortex_vault._has_policy(t.relid, 'cortex_vault_org') AS has_org,
        cortex_vault._has_policy(t.relid, 'cortex_vault_deployment') AS has_dep,
        (SELECT pg_catalog.format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = t.relid AND a.attname = t.col AND NOT a.attisdropped) AS col_type,
        EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                WHERE i.indrelid = t.relid AND a.attname = t.col) AS indexed,
        ARRAY(SELECT pg_catalog.format('permissive policy "%s" widens access beyond the organization', p.polname)
              FROM pg_catalog.pg_policy p
              WHERE p.polrelid = t.relid AND p.polpermissive AND p.polname <> 'cortex_vault_org'
              ORDER BY p.polname) AS wide,
        ARRAY(SELECT DISTINCT pg_catalog.format('view %s reads it with its owner''s rights', v.oid::regclass)
              FROM pg_catalog.pg_depend d
              JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid
              JOIN pg_catalog.pg_class v ON v.oid = w.ev_class
              WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refobjid = t.relid
                AND v.oid <> t.relid AND v.relkind IN ('v', 'm')
                AND (v.relkind = 'm' OR NOT coalesce(v.reloptions, '{}') && ARRAY['security_invoker=true', 'security_invoker=on', 'security_invoker=1', 'security_invoker=yes'])
              ) AS views,
        ARRAY(SELECT pg_catalog.format('role %s bypasses row-level security and may read it', r.rolname)
              FROM pg_catalog.pg_roles r
              WHERE r.rolbypassrls AND NOT r.rolsuper
                AND pg_catalog.has_table_privilege(r.oid, t.relid, 'SELECT')
              ORDER BY r.rolname) AS bypass
    FROM candidates t
)
SELECT f.relid::regclass, f.col, f.relrowsecurity, f.relforcerowsecurity, f.has_org, f.has_dep,
    ARRAY(SELECT x FROM pg_catalog.unnest(
        ARRAY[
            CASE WHEN f.col_type IS DISTINCT FROM 'uuid' THEN pg_catalog.format('column "%s" has type %s, not uuid', f.col, coalesce(f.col_type, 'none')) END,
            CASE WHEN NOT f.relrowsecurity THEN 'row-level security is disabled' END,
            CASE WHEN NOT f.relforcerowsecurity THEN 'row-level security is not forced, so the owner bypasses it' END,
            CASE WHEN NOT f.has_org THEN 'no cortex_vault organization policy' END,
            CASE WHEN NOT f.indexed THEN pg_catalog.format('no index leads with column "%s"', f.col) END
        ] || f.wide || f.views || f.bypass) AS x WHERE x IS NOT NULL)
FROM facts f
ORDER BY f.relid::regclass::text
$fn$;

CREATE FUNCTION cortex_vault.enable_audit(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    col name;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT coalesce((SELECT r.org_column FROM cortex_vault.isolated_tables r WHERE r.relid = tbl), 'org_id')
      INTO col;
    PERFORM cortex_vault._isolation_target(tbl, col, ARRAY['uuid']);
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = tbl AND tgname = 'cortex_vault_audit') THEN
        EXECUTE pg_catalog.format('DROP TRIGGER cortex_vault_audit ON %s', tbl);
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER cortex_vault_audit AFTER INSERT OR UPDATE OR DELETE ON %s '
        'FOR EACH ROW EXECUTE FUNCTION cortex_vault._audit_row_change(%L)', tbl, col);
END
$fn$;

CREATE FUNCTION cortex_vault.export_org_data()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    org    uuid := cortex_vault.current_org_id();
    reg    record;
    rows   jsonb;
    tables jsonb := '{}';
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'no organization context is set' USING ERRCODE = 'insufficient_privilege',
            HINT = 'Run SET LOCAL cortex_vault.org_id = ''<organization uuid>'' in the transaction.';
    END IF;
    FOR reg IN
        SELECT r.relid, r.org_column FROM cortex_vault.isolated_tables r
        JOIN pg_catalog.pg_class c ON c.oid = r.relid
        ORDER BY r.relid::text
    LOOP
        -- Row-level security filters too; the WHERE clause keeps the export
        -- to one organization even for a role that bypasses it.
        EXECUTE pg_catalog.format(
            'SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t)), ''[]'') FROM %s t WHERE t.%I = $1',
            reg.relid, reg.org_column) INTO rows USING org;
        tables := tables || pg_catalog.jsonb_build_object(reg.relid::text, rows);
    END LOOP;
    PERFORM cortex_vault._record_export();
    RETURN pg_catalog.jsonb_build_object('org_id', org, 'exported_at', pg_catalog.now(), 'tables', tables);
END
$fn$;
