-- The BYOK scenario of scripts/demo.sh, run by psql as several login roles.
\set ON_ERROR_STOP 0
\set ECHO queries
\set VERBOSITY default
\pset footer off

\echo
\echo '== 1. The platform administrator installs the vault and registers two organizations'
CREATE EXTENSION cortex_vault;
CREATE ROLE platform_admin LOGIN IN ROLE cortex_vault_admin;
CREATE ROLE dashboard      LOGIN IN ROLE cortex_vault_writer;
CREATE ROLE agent_runtime  LOGIN IN ROLE cortex_vault_reader;
CREATE ROLE acme_auditor   LOGIN IN ROLE cortex_vault_auditor;
\c - platform_admin
SELECT cortex_vault.create_org('a11ce000-0000-4000-8000-00000000ac4e', 'Acme Robotics') AS acme \gset
SELECT cortex_vault.create_org('910be000-0000-4000-8000-0000000910be', 'Globex') AS globex \gset
SELECT org_id, name FROM cortex_vault.orgs;

\echo
\echo '== 2. The dashboard (writer role) stores three provider keys for three agent deployments'
\c - dashboard
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SET LOCAL cortex_vault.actor = 'maria@acme.example';
SELECT cortex_vault.create_secret('anthropic', 'sk-ant-api03-Zq7Xw2mK9pL4vB8nR1tY6uE3oI5aS0dF2gH7jK4lQ9wE1rT6yU3iO8pA5sD2fG7hJ4kL0zX9cV6bN3mQ1wE8r-AcmeSupp0rtAA', 'support-bot', 'anthropic', 'Claude key for the support bot') AS acme_support_key \gset
SELECT cortex_vault.create_secret('openai', 'sk-proj-N4bV7cX1zL9kJ2hG5fD8sA3qW6eR0tY4uI7oP1aS5dF9gH2jK6lZ3xC8vB0nM4qW7eR1tY5uI9oP2aS6dF0gH3jK7lA', 'research-agent', 'openai', 'GPT key for the research agent') AS acme_research_key \gset
COMMIT;
BEGIN;
SET LOCAL cortex_vault.org_id = :'globex';
SET LOCAL cortex_vault.actor = 'li@globex.example';
SELECT cortex_vault.create_secret('anthropic', 'sk-ant-api03-Pp3Ll8Kk2Jj7Hh1Gg6Ff0Dd5Ss9Aa4Qq8Ww3Ee7Rr2Tt6Yy1Uu5Ii0Oo4Pp9Ll3Kk8Jj2Hh7Gg1Ff6Dd0Ss5Aa-GlobexSalesAA', 'sales-agent', 'anthropic', 'Claude key for the sales agent') AS globex_sales_key \gset
COMMIT;
\echo 'stored ids:' :acme_support_key :acme_research_key :globex_sales_key
\c - postgres
SELECT s.name, s.deployment_id, length(v.ciphertext) AS ciphertext_bytes,
       substr(encode(v.ciphertext, 'hex'), 1, 24) || '...' AS ciphertext_starts
FROM cortex_vault.secrets s JOIN cortex_vault.secret_versions v ON v.secret_id = s.id
ORDER BY s.created_at;

\echo
\echo '== 3. Acme''s support bot reads its key at the moment of use'
\c - agent_runtime
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SET LOCAL cortex_vault.deployment_id = 'support-bot';
SELECT left(cortex_vault.read_secret(:'acme_support_key'), 24) || '...' AS key_prefix;
COMMIT;

\echo
\echo '== 4. A session acting for Globex asks for Acme''s key: refused, as if it did not exist'
BEGIN;
SET LOCAL cortex_vault.org_id = :'globex';
SET LOCAL cortex_vault.deployment_id = 'sales-agent';
SELECT cortex_vault.read_secret(:'acme_support_key');
ROLLBACK;

\echo
\echo '== 5. Acme''s research agent asks for the support bot''s key: refused'
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SET LOCAL cortex_vault.deployment_id = 'research-agent';
SELECT cortex_vault.read_secret(:'acme_support_key');
ROLLBACK;

\echo
\echo '== 6. The dashboard tries to read a value: it holds no such right'
\c - dashboard
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SELECT cortex_vault.read_secret(:'acme_support_key');
ROLLBACK;

\echo
\echo '== 7. The dashboard rotates the support bot''s key with check-and-set'
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SET LOCAL cortex_vault.actor = 'maria@acme.example';
SELECT cortex_vault.rotate_secret(:'acme_support_key', 'sk-ant-api03-ROTATED9xY8wV7uT6sR5qP4oN3mL2kJ1iH0gF9eD8cB7aZ6yX5wV4uT3sR2qP1oN0mL9kJ8iH7gF6eD5cB4aZ3yX2wV1u-AcmeSupp0rtBB', 1) AS new_version;
COMMIT;
\echo 'A second writer still holding version 1 loses the race:'
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SELECT cortex_vault.rotate_secret(:'acme_support_key', 'sk-ant-api03-stale-writer', 1) AS stale_attempt;
ROLLBACK;
\c - agent_runtime
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SET LOCAL cortex_vault.deployment_id = 'support-bot';
SELECT left(cortex_vault.read_secret_by_name('anthropic'), 24) || '...' AS key_prefix_after_rotation;
COMMIT;

\echo
\echo '== 8. Metadata for Acme''s dashboard: names, versions, timestamps, never a value'
\c - dashboard
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SELECT name, deployment_id, provider, version, created_by, updated_by FROM cortex_vault.secret_metadata ORDER BY name;
COMMIT;

\echo
\echo '== 9. Acme''s auditor reads Acme''s audit trail (Globex''s rows stay invisible)'
\c - acme_auditor
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SELECT id, operation, outcome, deployment_id, db_user, actor, left(secret_id::text, 8) AS secret FROM cortex_vault.audit_log ORDER BY id;
COMMIT;
