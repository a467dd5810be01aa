-- The isolation part of scripts/demo.sh: an application table of the
-- platform, isolated per organization, then strict mode with a signed token.
\set ON_ERROR_STOP 0
\set ECHO queries
\pset footer off
\set acme 'a11ce000-0000-4000-8000-00000000ac4e'
\set globex '910be000-0000-4000-8000-0000000910be'

\echo
\echo '== 11. The platform''s own table of agent conversations, isolated per organization'
CREATE TABLE conversations (
    id bigserial,
    org_id uuid NOT NULL,
    deployment_id text,
    body text NOT NULL,
    PRIMARY KEY (org_id, id)
);
INSERT INTO conversations (org_id, deployment_id, body) VALUES
    (:'acme', 'support-bot', 'Customer asks about invoice 1042'),
    (:'acme', 'research-agent', 'Summary of three papers on RAG'),
    (:'globex', 'sales-agent', 'Lead: Initech, 40 seats');
GRANT SELECT, INSERT ON conversations TO agent_runtime;
GRANT SELECT ON conversations TO dashboard;
GRANT USAGE ON SEQUENCE conversations_id_seq TO agent_runtime;
SELECT cortex_vault.enable_org_isolation('conversations');
SELECT cortex_vault.enable_audit('conversations');
SELECT table_name, rls_enabled, rls_forced, org_policy, problems FROM cortex_vault.isolation_report();

\echo
\echo '== 12. Each organization sees only its own rows; no context sees nothing'
\c - agent_runtime
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SELECT deployment_id, body FROM conversations ORDER BY id;
COMMIT;
BEGIN;
SET LOCAL cortex_vault.org_id = :'globex';
SELECT deployment_id, body FROM conversations ORDER BY id;
COMMIT;
SELECT count(*) AS rows_without_context FROM conversations;

\echo
\echo '== 13. Writing a row into another organization is refused'
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
INSERT INTO conversations (org_id, body) VALUES (:'globex', 'planted by Acme');
ROLLBACK;

\echo
\echo '== 14. Acme cancels: the dashboard exports Acme''s rows of every isolated table as JSON'
\c - dashboard
BEGIN;
SET LOCAL cortex_vault.org_id = :'acme';
SELECT jsonb_pretty(cortex_vault.export_org_data() - 'exported_at') AS export;
COMMIT;

\echo
\echo '== 15. Strict mode: a bare SET is no longer enough; a signed, expiring token is'
\c - postgres
ALTER SYSTEM SET cortex_vault.strict_context = on;
SELECT pg_reload_conf();
\c - platform_admin
SELECT cortex_vault.issue_context_token(:'acme', 'support-bot', 300) AS token \gset
\c - agent_runtime
BEGIN;
SET LOCAL cortex_vault.org_id = :'globex';
SELECT count(*) FROM conversations;
ROLLBACK;
BEGIN;
SET LOCAL cortex_vault.context_token = :'token';
SELECT cortex_vault.current_org_id(), cortex_vault.current_deployment_id();
SELECT deployment_id, body FROM conversations ORDER BY id;
COMMIT;
\c - postgres
ALTER SYSTEM RESET cortex_vault.strict_context;
SELECT pg_reload_conf();
