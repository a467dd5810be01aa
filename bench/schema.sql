-- Benchmark database set-up, run once by the superuser in the database
-- "bench" of a throwaway server. Creates the login roles that hold the
-- vault's duties, the baseline ("by hand") tables, the lookup table pgbench
-- draws its rows from, and an application table under isolation.
\set ON_ERROR_STOP 1
CREATE EXTENSION cortex_vault;

-- Ordinary login roles, none of them superuser. bench_plain runs every
-- baseline transaction; bench_app_owner owns the application table and
-- bypasses row-level security, as an owner does on a table whose security
-- is not forced (enable_org_isolation forces it).
CREATE ROLE bench_admin     LOGIN IN ROLE cortex_vault_admin;
CREATE ROLE bench_writer    LOGIN IN ROLE cortex_vault_writer;
CREATE ROLE bench_reader    LOGIN IN ROLE cortex_vault_reader;
CREATE ROLE bench_plain     LOGIN;
CREATE ROLE bench_app       LOGIN;
CREATE ROLE bench_app_owner LOGIN BYPASSRLS IN ROLE cortex_vault_admin;

-- Helpers: organization ids, deployment names and provider-shaped keys.
CREATE SCHEMA bench;
GRANT USAGE ON SCHEMA bench TO PUBLIC;

CREATE FUNCTION bench.org_uuid(i integer) RETURNS uuid
LANGUAGE sql IMMUTABLE
RETURN ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid;

CREATE FUNCTION bench.deployment(d integer) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN (ARRAY['support-bot', 'research-agent', 'sales-agent'])[d];

-- n random characters of the URL-safe base64 alphabet, as provider keys use.
CREATE FUNCTION bench.random_chars(n integer) RETURNS text
LANGUAGE sql VOLATILE
RETURN substr(translate(encode(sha512(random()::text::bytea) || sha512(random()::text::bytea)
                               || sha512(random()::text::bytea), 'base64'),
                        E'+/=\n', '-_'), 1, n);

-- A value shaped like the provider's real keys: prefix, alphabet, length.
CREATE FUNCTION bench.provider_key(provider text) RETURNS text
LANGUAGE sql VOLATILE
RETURN CASE provider
    WHEN 'anthropic' THEN 'sk-ant-api03-' || bench.random_chars(93) || 'AA'
    WHEN 'openai'    THEN 'sk-proj-' || bench.random_chars(156)
    WHEN 'groq'      THEN 'gsk_' || bench.random_chars(52)
    WHEN 'google'    THEN 'AIza' || bench.random_chars(35)
    WHEN 'mistral'   THEN bench.random_chars(32)
    ELSE bench.random_chars(40)
END;

-- The k-th secret of an organization: secrets 1-9 are three providers for
-- each of the three deployments, 10 is an organization-wide Gemini key,
-- further ones spread over the deployments and organization-wide.
CREATE FUNCTION bench.secret_provider(k integer) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN k <= 9 THEN (ARRAY['anthropic', 'openai', 'groq'])[(k - 1) / 3 + 1]
            WHEN k = 10 THEN 'google'
            ELSE (ARRAY['anthropic', 'openai', 'groq', 'google', 'mistral', 'cohere'])[k % 6 + 1]
       END;

CREATE FUNCTION bench.secret_deployment(k integer) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN k <= 9 THEN bench.deployment((k - 1) % 3 + 1)
            WHEN k = 10 OR k % 4 = 0 THEN NULL
            ELSE bench.deployment(k % 4)
       END;

-- Adds secrets first..last to every organization through create_secret, as
-- the writer role, with the organization in context; commits every 50
-- organizations so that a million secrets do not make one transaction.
CREATE PROCEDURE bench.add_secrets(first integer, last integer, orgs integer)
LANGUAGE plpgsql
AS $proc$
BEGIN
    FOR o IN 1..orgs LOOP
        PERFORM set_config('cortex_vault.org_id', bench.org_uuid(o)::text, true);
        PERFORM set_config('cortex_vault.actor', 'loader@org' || o || '.example', true);
        PERFORM cortex_vault.create_secret(
                    CASE WHEN k <= 10 THEN bench.secret_provider(k) ELSE 'key-' || k END,
                    bench.provider_key(bench.secret_provider(k)),
                    bench.secret_deployment(k), bench.secret_provider(k),
                    'API key ' || k || ' of organization ' || o)
        FROM generate_series(first, last) AS k;
        IF o % 50 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END
$proc$;
GRANT EXECUTE ON PROCEDURE bench.add_secrets(integer, integer, integer) TO bench_writer;

-- What pgbench reads: row n names a secret, its organization and a
-- deployment that may see it (its own, or the first for an
-- organization-wide secret). Rebuilt after every load, in random order.
CREATE TABLE bench.ids (
    n   integer PRIMARY KEY,
    org uuid NOT NULL,
    dep text NOT NULL,
    sid uuid NOT NULL
);
GRANT SELECT ON bench.ids TO PUBLIC;

-- The baseline tables: the vault's storage tables, copied column for
-- column with their indexes, constraints and foreign keys, without
-- row-level security or triggers.
CREATE SCHEMA plain;
CREATE TABLE plain.orgs (LIKE cortex_vault.orgs INCLUDING ALL);
CREATE TABLE plain.org_keys (LIKE cortex_vault.org_keys INCLUDING ALL,
    FOREIGN KEY (org_id) REFERENCES plain.orgs (org_id));
CREATE TABLE plain.secrets (LIKE cortex_vault.secrets INCLUDING ALL,
    FOREIGN KEY (org_id) REFERENCES plain.orgs (org_id));
CREATE TABLE plain.secret_versions (LIKE cortex_vault.secret_versions INCLUDING ALL,
    FOREIGN KEY (org_id, secret_id) REFERENCES plain.secrets (org_id, id) ON DELETE CASCADE);
CREATE TABLE plain.audit_log (LIKE cortex_vault.audit_log INCLUDING ALL);
GRANT USAGE ON SCHEMA plain TO bench_plain;
GRANT SELECT ON ALL TABLES IN SCHEMA plain TO bench_plain;
GRANT INSERT ON plain.secrets, plain.secret_versions, plain.audit_log TO bench_plain;

-- An application table under the isolation helpers: agent runs, 1,000 per
-- organization, interleaved in time as a shared platform writes them.
CREATE SCHEMA app AUTHORIZATION bench_app_owner;
GRANT USAGE ON SCHEMA app TO bench_app;
