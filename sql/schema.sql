-- cortex_vault storage. Every table carries org_id first in its primary key
-- and unique constraints, so that Citus can distribute and co-locate them by
-- organization. No table ever holds a plaintext value or an unwrapped key.

-- Values, names and context settings are handled as UTF-8 text.
DO $encoding$
BEGIN
    IF pg_catalog.getdatabaseencoding() <> 'UTF8' THEN
        RAISE EXCEPTION 'cortex_vault requires a UTF8 database'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = pg_catalog.format('This database uses %s.', pg_catalog.getdatabaseencoding()),
                  HINT = 'Create the database with ENCODING ''UTF8'' and install the extension there.';
    END IF;
END
$encoding$;

-- The four duties. Roles are cluster-wide and outlive the extension; they are
-- created only when missing, never altered.
DO $roles$
DECLARE
    duty text;
BEGIN
    FOREACH duty IN ARRAY ARRAY['cortex_vault_admin', 'cortex_vault_writer',
                                'cortex_vault_reader', 'cortex_vault_auditor']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = duty) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', duty);
        END IF;
    END LOOP;
END
$roles$;

CREATE TABLE cortex_vault.orgs (
    org_id      uuid PRIMARY KEY,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    shredded_at timestamptz
);

-- One wrapped key per organization. master_fingerprint names the master key
-- version that wraps it, so a server missing that version says which one.
CREATE TABLE cortex_vault.org_keys (
    org_id             uuid PRIMARY KEY REFERENCES cortex_vault.orgs (org_id),
    key_version        integer NOT NULL CHECK (key_version > 0),
    master_fingerprint text NOT NULL CHECK (master_fingerprint ~ '^[0-9a-f]{16}$'),
    wrapped_key        bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at         timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Secret metadata. A NULL deployment_id is an organization-wide secret.
CREATE TABLE cortex_vault.secrets (
    org_id        uuid NOT NULL REFERENCES cortex_vault.orgs (org_id),
    id            uuid NOT NULL,
    deployment_id text,
    name          text NOT NULL,
    provider      text,
    description   text,
    version       integer NOT NULL CHECK (version > 0),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by    text NOT NULL,
    updated_by    text,
    PRIMARY KEY (org_id, id),
    CONSTRAINT secrets_name_key UNIQUE NULLS NOT DISTINCT (org_id, deployment_id, name)
);

-- Every stored version of a value, as ciphertext only.
CREATE TABLE cortex_vault.secret_versions (
    org_id          uuid NOT NULL,
    secret_id       uuid NOT NULL,
    version         integer NOT NULL CHECK (version > 0),
    org_key_version integer NOT NULL,
    ciphertext      bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (org_id, secret_id, version),
    FOREIGN KEY (org_id, secret_id)
        REFERENCES cortex_vault.secrets (org_id, id) ON DELETE CASCADE
);
-- Ciphertext does not compress; storing it uncompressed saves the attempt.
ALTER TABLE cortex_vault.secret_versions ALTER COLUMN ciphertext SET STORAGE EXTERNAL;

-- The audit trail: append-only for every role, isolated per organization.
CREATE TABLE cortex_vault.audit_log (
    org_id        uuid NOT NULL,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    at            timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    deployment_id text,
    secret_id     uuid,
    table_name    text,
    operation     text NOT NULL,
    outcome       text NOT NULL,
    db_user       text NOT NULL,
    actor         text,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX audit_log_at_idx ON cortex_vault.audit_log (org_id, at);

-- Roles bound to organizations: a bound role acts only for these. Names, not
-- oids, so that bindings survive dump and restore into another cluster.
CREATE TABLE cortex_vault.role_bindings (
    org_id     uuid NOT NULL REFERENCES cortex_vault.orgs (org_id),
    role_name  name NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (org_id, role_name)
);
CREATE INDEX role_bindings_role_idx ON cortex_vault.role_bindings (role_name);

-- Application tables under the isolation helpers, and what they changed, so
-- that disable_org_isolation() undoes exactly that.
CREATE TABLE cortex_vault.isolated_tables (
    relid             regclass PRIMARY KEY,
    org_column        name NOT NULL,
    deployment_column name,
    rls_was_enabled   boolean NOT NULL,
    rls_was_forced    boolean NOT NULL,
    org_policy_def    text,
    deployment_policy_def text,
    enabled_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    enabled_by        name NOT NULL DEFAULT CURRENT_USER
);
