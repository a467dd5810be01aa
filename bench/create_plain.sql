-- The baseline of create_vault.sql, by hand: the same context, a metadata
-- row, a value row of the ciphertext's size (108 bytes plus 41 of format
-- byte, nonce and tag) and an audit row, in one statement.
\set n random(1, :nids)
BEGIN;
SELECT set_config('cortex_vault.org_id', org::text, true) AS org,
       set_config('cortex_vault.deployment_id', dep, true) AS dep
FROM bench.ids WHERE n = :n \gset
WITH s AS (
    INSERT INTO plain.secrets (org_id, id, deployment_id, name, provider, description,
                               version, created_by)
    VALUES (:org, gen_random_uuid(), :dep, 'bench-' || gen_random_uuid(), 'anthropic',
            'Benchmark key', 1, current_user)
    RETURNING org_id, id, deployment_id
), v AS (
    INSERT INTO plain.secret_versions (org_id, secret_id, version, org_key_version, ciphertext)
    SELECT s.org_id, s.id, 1, 1,
           '\x01'::bytea
           || convert_to('sk-ant-api03-Zq7Xw2mK9pL4vB8nR1tY6uE3oI5aS0dF2gH7jK4lQ9wE1rT6yU3iO8pA5sD2fG7hJ4kL0zX9cV6bN3mQ1wE8r-Bench01AA', 'UTF8')
           || '\x000102030405060708090a0b0c0d0e0f1011121314151617'::bytea
           || '\x18191a1b1c1d1e1f2021222324252627'::bytea
    FROM s
), a AS (
    INSERT INTO plain.audit_log (org_id, deployment_id, secret_id, operation, outcome,
                                 db_user, actor)
    SELECT s.org_id, s.deployment_id, s.id, 'create', 'success', current_user,
           nullif(current_setting('cortex_vault.actor', true), '')
    FROM s
)
SELECT id FROM s;
COMMIT;
