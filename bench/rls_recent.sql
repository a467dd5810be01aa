-- A dashboard query on the isolated table as an ordinary role: the 20
-- latest runs of the organization in context, filtered by the policy.
\set n random(1, :orgs)
BEGIN;
SELECT set_config('cortex_vault.org_id', bench.org_uuid(:n)::text, true) AS org \gset
SELECT id, deployment_id, model, tokens, created_at
FROM app.agent_runs ORDER BY created_at DESC LIMIT 20;
COMMIT;
