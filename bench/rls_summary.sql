-- A report on the isolated table as an ordinary role: tokens per
-- deployment over the organization's 1,000 runs, filtered by the policy.
\set n random(1, :orgs)
BEGIN;
SELECT set_config('cortex_vault.org_id', bench.org_uuid(:n)::text, true) AS org \gset
SELECT deployment_id, count(*), sum(tokens) FROM app.agent_runs GROUP BY deployment_id;
COMMIT;
