-- create_secret as a dashboard's writer role calls it: a 108-byte
-- Anthropic-shaped key under a fresh name, for a random organization and
-- deployment.
\set n random(1, :nids)
BEGIN;
SELECT set_config('cortex_vault.org_id', org::text, true) AS org,
       set_config('cortex_vault.deployment_id', dep, true) AS dep
FROM bench.ids WHERE n = :n \gset
SELECT cortex_vault.create_secret(
    'bench-' || gen_random_uuid(),
    'sk-ant-api03-Zq7Xw2mK9pL4vB8nR1tY6uE3oI5aS0dF2gH7jK4lQ9wE1rT6yU3iO8pA5sD2fG7hJ4kL0zX9cV6bN3mQ1wE8r-Bench01AA',
    :dep, 'anthropic', 'Benchmark key');
COMMIT;
