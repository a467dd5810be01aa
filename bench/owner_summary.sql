-- The baseline of rls_summary.sql: the same query as the table's owner,
-- which bypasses row-level security, with an explicit WHERE.
\set n random(1, :orgs)
BEGIN;
SELECT set_config('cortex_vault.org_id', bench.org_uuid(:n)::text, true) AS org \gset
SELECT deployment_id, count(*), sum(tokens) FROM app.agent_runs WHERE org_id = :org
GROUP BY deployment_id;
COMMIT;
