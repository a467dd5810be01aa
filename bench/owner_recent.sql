-- The baseline of rls_recent.sql: the same query as the table's owner,
-- which bypasses row-level security, with an explicit WHERE.
\set n random(1, :orgs)
BEGIN;
SELECT set_config('cortex_vault.org_id', bench.org_uuid(:n)::text, true) AS org \gset
SELECT id, deployment_id, model, tokens, created_at
FROM app.agent_runs WHERE org_id = :org ORDER BY created_at DESC LIMIT 20;
COMMIT;
