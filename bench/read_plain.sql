-- The baseline of read_vault.sql, by hand: the same context, the same row
-- found by id (ciphertext and wrapped key, as the vault fetches them), and
-- an audit row of the same shape, in one statement as the vault's one call.
\set n random(1, :nids)
BEGIN;
SELECT set_config('cortex_vault.org_id', org::text, true) AS org,
       set_config('cortex_vault.deployment_id', dep, true) AS dep, sid
FROM bench.ids WHERE n = :n \gset
WITH r AS (
    SELECT s.id, s.deployment_id, s.version, v.org_key_version, v.ciphertext,
           k.master_fingerprint, k.wrapped_key
    FROM plain.secrets s
    JOIN plain.secret_versions v
      ON v.org_id = s.org_id AND v.secret_id = s.id AND v.version = s.version
    JOIN plain.org_keys k ON k.org_id = s.org_id
    WHERE s.org_id = :org AND s.id = :sid
      AND (s.deployment_id IS NULL OR s.deployment_id = :dep)
), a AS (
    INSERT INTO plain.audit_log (org_id, deployment_id, secret_id, operation, outcome,
                                 db_user, actor)
    SELECT :org, :dep, r.id, 'read', 'success', current_user,
           nullif(current_setting('cortex_vault.actor', true), '')
    FROM r
)
SELECT ciphertext FROM r;
COMMIT;
