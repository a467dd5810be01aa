-- Copies the vault's rows into the baseline tables, so that both sides read
-- tables of the same size, and rebuilds the lookup table pgbench draws from.
-- Run by the superuser after every load.
\set ON_ERROR_STOP 1
TRUNCATE plain.orgs, plain.org_keys, plain.secrets, plain.secret_versions, plain.audit_log;
INSERT INTO plain.orgs SELECT * FROM cortex_vault.orgs;
INSERT INTO plain.org_keys SELECT * FROM cortex_vault.org_keys;
INSERT INTO plain.secrets SELECT * FROM cortex_vault.secrets;
INSERT INTO plain.secret_versions SELECT * FROM cortex_vault.secret_versions;

TRUNCATE bench.ids;
INSERT INTO bench.ids (n, org, dep, sid)
SELECT row_number() OVER (ORDER BY random()), s.org_id,
       coalesce(s.deployment_id, bench.deployment(1)), s.id
FROM cortex_vault.secrets s;
VACUUM ANALYZE;
