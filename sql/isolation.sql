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

-- A policy's definition as text: expressions, command, roles, kind. Stored
-- when a helper creates the policy, so the report sees a later ALTER POLICY.
CREATE FUNCTION cortex_vault._policy_def(tbl regclass, policy name)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT pg_catalog.concat_ws(' | ', pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                                pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid),
                                p.polcmd, p.polroles::text, p.polpermissive)
    FROM pg_catalog.pg_policy p WHERE p.polrelid = tbl AND p.polname = policy
$fn$;

-- Partitions and inheritance children: a query on one of them directly does
-- not apply its parent's policies, so every helper treats them as well.
CREATE FUNCTION cortex_vault._children(tbl regclass)
RETURNS SETOF regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT i.inhrelid::regclass FROM pg_catalog.pg_inherits i
    WHERE i.inhparent = tbl ORDER BY i.inhrelid
$fn$;

-- TRUNCATE is not subject to row-level security: on an isolated table it
-- would remove every organization's rows, so it is refused.
CREATE FUNCTION cortex_vault._refuse_truncate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RAISE EXCEPTION 'truncate is refused on an isolated table'
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = pg_catalog.format('TRUNCATE %s would remove the rows of every organization.',
                                         TG_RELID::regclass),
              HINT = 'Delete the organization''s rows with DELETE, or disable isolation first.';
END
$fn$;

CREATE FUNCTION cortex_vault.enable_org_isolation(tbl regclass, org_column name DEFAULT 'org_id')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    cond  text;
    child regclass;
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
    UPDATE cortex_vault.isolated_tables
       SET org_policy_def = cortex_vault._policy_def(tbl, 'cortex_vault_org')
     WHERE relid = tbl;

    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                   WHERE tgrelid = tbl AND tgname = 'cortex_vault_no_truncate') THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER cortex_vault_no_truncate BEFORE TRUNCATE ON %s '
            'FOR EACH STATEMENT EXECUTE FUNCTION cortex_vault._refuse_truncate()', tbl);
    END IF;

    FOR child IN SELECT * FROM cortex_vault._children(tbl) LOOP
        PERFORM cortex_vault.enable_org_isolation(child, org_column);
    END LOOP;

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
    ctx   text := '(SELECT cortex_vault.current_deployment_id())';
    child regclass;
BEGIN
    PERFORM cortex_vault._isolation_target(tbl, deployment_column,
                                           ARRAY['text', 'character varying']);
    IF NOT EXISTS (SELECT 1 FROM cortex_vault.isolated_tables WHERE relid = tbl) THEN
        RAISE EXCEPTION '% is not under organization isolation', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run cortex_vault.enable_org_isolation() on the table first.';
    END IF;

    -- Restrictive: it narrows the organization policy, never widens it. A row
    -- with a NULL deployment belongs to the whole organization; a session
    -- without a deployment in context acts for the whole organization.
    PERFORM cortex_vault._drop_policy(tbl, 'cortex_vault_deployment');
    EXECUTE pg_catalog.format(
        'CREATE POLICY cortex_vault_deployment ON %1$s AS RESTRICTIVE FOR ALL TO PUBLIC '
        'USING (%2$I IS NULL OR %3$s IS NULL OR %2$I = %3$s) '
        'WITH CHECK (%3$s IS NULL OR %2$I = %3$s)',
        tbl, deployment_column, ctx);
    UPDATE cortex_vault.isolated_tables
       SET deployment_column = $2,
           deployment_policy_def = cortex_vault._policy_def(tbl, 'cortex_vault_deployment')
     WHERE relid = tbl;

    FOR child IN SELECT * FROM cortex_vault._children(tbl) LOOP
        PERFORM cortex_vault.enable_deployment_isolation(child, deployment_column);
    END LOOP;
END
$fn$;

CREATE FUNCTION cortex_vault.disable_org_isolation(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    reg   cortex_vault.isolated_tables;
    child regclass;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOR child IN SELECT * FROM cortex_vault._children(tbl) LOOP
        PERFORM cortex_vault.disable_org_isolation(child);
    END LOOP;
    SELECT * INTO reg FROM cortex_vault.isolated_tables WHERE relid = tbl;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM cortex_vault._drop_policy(tbl, 'cortex_vault_deployment');
    PERFORM cortex_vault._drop_policy(tbl, 'cortex_vault_org');
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
               WHERE tgrelid = tbl AND tgname = 'cortex_vault_no_truncate') THEN
        EXECUTE pg_catalog.format('DROP TRIGGER cortex_vault_no_truncate ON %s', tbl);
    END IF;
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
WITH RECURSIVE registered_tree AS (
    -- Registered tables and every partition or child below them.
    SELECT r.relid::oid AS relid, r.org_column AS col FROM cortex_vault.isolated_tables r
    UNION
    SELECT i.inhrelid, t.col FROM pg_catalog.pg_inherits i JOIN registered_tree t ON i.inhparent = t.relid
),
candidates AS (
    SELECT c.oid AS relid, c.relrowsecurity, c.relforcerowsecurity,
           coalesce(r.org_column, (SELECT t.col FROM registered_tree t WHERE t.relid = c.oid LIMIT 1),
                    'org_id'::name) AS col,
           r.relid IS NOT NULL AS registered,
           r.org_policy_def, r.deployment_policy_def,
           EXISTS (SELECT 1 FROM registered_tree t WHERE t.relid = c.oid) AS in_tree
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN cortex_vault.isolated_tables r ON r.relid = c.oid
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'cortex_vault', 'pg_toast')
      AND (EXISTS (SELECT 1 FROM registered_tree t WHERE t.relid = c.oid) OR EXISTS (
            SELECT 1 FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND a.attnum > 0 AND NOT a.attisdropped))
),
facts AS (
    SELECT t.*,
        cortex_vault._has_policy(t.relid, 'cortex_vault_org') AS has_org,
        cortex_vault._has_policy(t.relid, 'cortex_vault_deployment') AS has_dep,
        cortex_vault._policy_def(t.relid, 'cortex_vault_org') AS org_def_now,
        cortex_vault._policy_def(t.relid, 'cortex_vault_deployment') AS dep_def_now,
        (SELECT pg_catalog.format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = t.relid AND a.attname = t.col AND NOT a.attisdropped) AS col_type,
        (SELECT a.attnum FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = t.relid AND a.attname = t.col AND NOT a.attisdropped) AS col_num,
        EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                WHERE i.indrelid = t.relid AND a.attname = t.col) AS indexed,
        (SELECT tg.tgenabled FROM pg_catalog.pg_trigger tg
          WHERE tg.tgrelid = t.relid AND tg.tgname = 'cortex_vault_no_truncate') AS truncate_guard,
        (SELECT tg.tgenabled FROM pg_catalog.pg_trigger tg
          WHERE tg.tgrelid = t.relid AND tg.tgname = 'cortex_vault_audit') AS audit_trigger
    FROM candidates t
),
findings AS (
    SELECT f.relid,
        ARRAY(SELECT pg_catalog.format('permissive policy "%s" widens access beyond the organization', p.polname)
              FROM pg_catalog.pg_policy p
              WHERE p.polrelid = f.relid AND p.polpermissive AND p.polname <> 'cortex_vault_org'
              ORDER BY p.polname) AS wide,
        ARRAY(SELECT pg_catalog.format('index %s does not lead with column "%s": %s', x.indexrelid::regclass, f.col,
                  CASE WHEN x.indisunique THEN 'a duplicate-key error can reveal another organization''s row'
                       ELSE 'EXPLAIN ANALYZE can count another organization''s rows through it' END)
              FROM pg_catalog.pg_index x
              WHERE x.indrelid = f.relid AND x.indkey[0] IS DISTINCT FROM f.col_num
              ORDER BY x.indexrelid::regclass::text) AS indexes,
        ARRAY(SELECT DISTINCT pg_catalog.format('view %s reads it with its owner''s rights', v.oid::regclass)
              FROM pg_catalog.pg_depend d
              JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid
              JOIN pg_catalog.pg_class v ON v.oid = w.ev_class
              WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refobjid = f.relid
                AND v.oid <> f.relid AND v.relkind IN ('v', 'm')
                AND (v.relkind = 'm' OR NOT coalesce(v.reloptions, '{}') &&
                     ARRAY['security_invoker=true', 'security_invoker=on',
                           'security_invoker=1', 'security_invoker=yes'])) AS views,
        ARRAY(SELECT pg_catalog.format('role %s bypasses row-level security and may read it', r.rolname)
              FROM pg_catalog.pg_roles r
              WHERE r.rolbypassrls AND NOT r.rolsuper
                AND pg_catalog.has_table_privilege(r.oid, f.relid, 'SELECT')
              ORDER BY r.rolname) AS bypass
    FROM facts f
)
SELECT f.relid::regclass, f.col, f.relrowsecurity, f.relforcerowsecurity, f.has_org, f.has_dep,
    ARRAY(SELECT x FROM pg_catalog.unnest(
        ARRAY[
            CASE WHEN f.col_type IS DISTINCT FROM 'uuid'
                 THEN pg_catalog.format('column "%s" has type %s, not uuid', f.col, coalesce(f.col_type, 'none')) END,
            CASE WHEN f.in_tree AND NOT f.registered
                 THEN 'it is a partition or child of an isolated table but is not isolated itself' END,
            CASE WHEN NOT f.relrowsecurity THEN 'row-level security is disabled' END,
            CASE WHEN NOT f.relforcerowsecurity THEN 'row-level security is not forced, so the owner bypasses it' END,
            CASE WHEN NOT f.has_org THEN 'no cortex_vault organization policy' END,
            CASE WHEN f.has_org AND f.org_def_now IS DISTINCT FROM f.org_policy_def
                 THEN 'policy cortex_vault_org was changed after enable_org_isolation()' END,
            CASE WHEN f.has_dep AND f.dep_def_now IS DISTINCT FROM f.deployment_policy_def
                 THEN 'policy cortex_vault_deployment was changed after enable_deployment_isolation()' END,
            CASE WHEN f.registered AND f.truncate_guard IS NULL
                 THEN 'TRUNCATE is not refused, and it ignores row-level security' END,
            CASE WHEN f.truncate_guard = 'D'
                 THEN 'trigger cortex_vault_no_truncate is disabled, so TRUNCATE removes every organization''s rows' END,
            CASE WHEN f.audit_trigger = 'D' THEN 'audit trigger cortex_vault_audit is disabled' END,
            CASE WHEN NOT f.indexed THEN pg_catalog.format('no index leads with column "%s"', f.col) END
        ] || g.wide || g.indexes || g.views || g.bypass) AS x WHERE x IS NOT NULL)
FROM facts f JOIN findings g ON g.relid = f.relid
ORDER BY f.relid::regclass::text
$fn$;

CREATE FUNCTION cortex_vault.enable_audit(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    col   name;
    child regclass;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Only an isolated table: its policy guarantees that an audited row
    -- belongs to the organization in context, so no one can write rows into
    -- another organization's trail.
    SELECT r.org_column INTO col FROM cortex_vault.isolated_tables r WHERE r.relid = tbl;
    IF col IS NULL THEN
        RAISE EXCEPTION '% is not under organization isolation', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run cortex_vault.enable_org_isolation() on the table first.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = tbl AND tgname = 'cortex_vault_audit') THEN
        EXECUTE pg_catalog.format('DROP TRIGGER cortex_vault_audit ON %s', tbl);
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER cortex_vault_audit AFTER INSERT OR UPDATE OR DELETE ON %s '
        'FOR EACH ROW EXECUTE FUNCTION cortex_vault._audit_row_change(%L)', tbl, col);
    -- Partitions receive a partitioned table's row triggers by themselves;
    -- inheritance children do not.
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = tbl) = 'r' THEN
        FOR child IN SELECT * FROM cortex_vault._children(tbl) LOOP
            PERFORM cortex_vault.enable_audit(child);
        END LOOP;
    END IF;
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
