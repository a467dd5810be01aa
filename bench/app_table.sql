-- The isolated application table, loaded and put under organization
-- isolation by its owner. Variables: orgs, rows_per_org.
\set ON_ERROR_STOP 1
CREATE TABLE app.agent_runs (
    org_id        uuid NOT NULL,
    id            bigint NOT NULL,
    deployment_id text NOT NULL,
    model         text NOT NULL,
    tokens        integer NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (org_id, id)
);
INSERT INTO app.agent_runs
SELECT bench.org_uuid((i % :orgs)::integer + 1), i, bench.deployment((i % 3)::integer + 1),
       (ARRAY['claude-sonnet-4', 'gpt-4.1', 'llama-3.3-70b'])[(i / :orgs % 3)::integer + 1],
       (random() * 8000)::integer + 50,
       timestamptz '2026-01-01' + i * interval '2 seconds'
FROM generate_series(0, :orgs::bigint * :rows_per_org - 1) AS i;
CREATE INDEX agent_runs_org_created_idx ON app.agent_runs (org_id, created_at);
GRANT SELECT ON app.agent_runs TO bench_app;
SELECT cortex_vault.enable_org_isolation('app.agent_runs');
VACUUM ANALYZE app.agent_runs;
