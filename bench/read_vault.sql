-- read_secret as an agent runtime calls it: the context set for this
-- transaction only, then one read. The row of bench.ids only tells pgbench
-- which organization, deployment and secret to use; the baseline does the
-- same lookup.
\set n random(1, :nids)
BEGIN;
SELECT set_config('cortex_vault.org_id', org::text, true) AS org,
       set_config('cortex_vault.deployment_id', dep, true) AS dep, sid
FROM bench.ids WHERE n = :n \gset
SELECT cortex_vault.read_secret(:sid);
COMMIT;
