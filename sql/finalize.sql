-- Triggers, views, privileges and comments, run after every function exists.

-- The audit trail refuses UPDATE, DELETE and TRUNCATE from every role,
-- including the owner; only dropping the extension removes it.
CREATE FUNCTION cortex_vault._audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only'
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = pg_catalog.format('%s on cortex_vault.audit_log is refused for every role.', TG_OP);
END
$fn$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON cortex_vault.audit_log
    FOR EACH ROW EXECUTE FUNCTION cortex_vault._audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON cortex_vault.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION cortex_vault._audit_log_append_only();

-- Every change a vault function makes to a secret's row writes its audit row
-- in the same transaction. Changes made outside the vault functions, such as
-- pg_restore loading a dump as the owner, carry no caller and are not audited
-- again.
CREATE FUNCTION cortex_vault._audit_secret_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    r      record;
    op     text;
    caller text := cortex_vault._audit_caller();
BEGIN
    IF caller IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        r := NEW; op := 'create';
    ELSIF TG_OP = 'DELETE' THEN
        r := OLD; op := 'delete';
    ELSE
        r := NEW; op := 'rotate';
    END IF;
    INSERT INTO cortex_vault.audit_log
        (org_id, deployment_id, secret_id, operation, outcome, db_user, actor)
    VALUES (r.org_id, r.deployment_id, r.id, op, 'success', caller,
            pg_catalog.left(NULLIF(pg_catalog.current_setting('cortex_vault.actor', true), ''), 255));
    RETURN NULL;
END
$fn$;

CREATE TRIGGER secrets_audit
    AFTER INSERT OR DELETE OR UPDATE OF version ON cortex_vault.secrets
    FOR EACH ROW EXECUTE FUNCTION cortex_vault._audit_secret_change();

-- Every change to the bindings reaches the other backends' caches at commit.
CREATE TRIGGER role_bindings_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cortex_vault.role_bindings
    FOR EACH STATEMENT EXECUTE FUNCTION cortex_vault._bindings_changed();

-- Auditors see the rows of the organization in context, nothing else.
ALTER TABLE cortex_vault.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE cortex_vault.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_log_read ON cortex_vault.audit_log FOR SELECT
    USING (org_id = (SELECT cortex_vault.current_org_id()));
-- Only the vault itself holds INSERT; privileges gate it, not this policy.
CREATE POLICY audit_log_append ON cortex_vault.audit_log FOR INSERT WITH CHECK (true);

-- Metadata without values, for the organization in context. A session with
-- a deployment in context sees that deployment's and organization-wide
-- secrets only.
CREATE VIEW cortex_vault.secret_metadata WITH (security_barrier) AS
SELECT s.id, s.org_id, s.deployment_id, s.name, s.provider, s.description,
       s.version, s.created_at, s.updated_at, s.created_by, s.updated_by
FROM cortex_vault.secrets s
WHERE s.org_id = (SELECT cortex_vault.current_org_id())
  AND (s.deployment_id IS NULL
       OR (SELECT cortex_vault.current_deployment_id()) IS NULL
       OR s.deployment_id = (SELECT cortex_vault.current_deployment_id()));

-- pg_dump keeps the vault's rows with the extension.
SELECT pg_catalog.pg_extension_config_dump('cortex_vault.orgs', '');
SELECT pg_catalog.pg_extension_config_dump('cortex_vault.org_keys', '');
SELECT pg_catalog.pg_extension_config_dump('cortex_vault.secrets', '');
SELECT pg_catalog.pg_extension_config_dump('cortex_vault.secret_versions', '');
SELECT pg_catalog.pg_extension_config_dump('cortex_vault.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('cortex_vault.audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('cortex_vault.role_bindings', '');
SELECT pg_catalog.pg_extension_config_dump('cortex_vault.isolated_tables', '');

-- Privileges: nothing for PUBLIC but what policies must call; each duty
-- gets exactly its functions.
REVOKE ALL ON ALL TABLES IN SCHEMA cortex_vault FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA cortex_vault FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA cortex_vault FROM PUBLIC;
GRANT USAGE ON SCHEMA cortex_vault TO PUBLIC;
GRANT EXECUTE ON FUNCTION cortex_vault.current_org_id(),
                          cortex_vault.current_deployment_id(),
                          cortex_vault.sealing_public_key() TO PUBLIC;

GRANT EXECUTE ON FUNCTION cortex_vault.create_org(uuid, text),
                          cortex_vault.rotate_master_key(),
                          cortex_vault.rotate_org_key(),
                          cortex_vault.shred_org(uuid) TO cortex_vault_admin;
GRANT EXECUTE ON FUNCTION cortex_vault.create_secret(text, text, text, text, text),
                          cortex_vault.rotate_secret(uuid, text, integer),
                          cortex_vault.delete_secret(uuid),
                          cortex_vault.create_secret_sealed(text, bytea, text, text, text),
                          cortex_vault.rotate_secret_sealed(uuid, bytea, integer) TO cortex_vault_writer;
GRANT EXECUTE ON FUNCTION cortex_vault.read_secret(uuid),
                          cortex_vault.read_secret_by_name(text, text) TO cortex_vault_reader;
GRANT SELECT ON cortex_vault.secret_metadata
    TO cortex_vault_admin, cortex_vault_writer, cortex_vault_reader;
GRANT SELECT ON cortex_vault.audit_log TO cortex_vault_auditor;
GRANT SELECT ON cortex_vault.orgs TO cortex_vault_admin;

GRANT EXECUTE ON FUNCTION cortex_vault.bind_role(text, uuid),
                          cortex_vault.unbind_role(text, uuid),
                          cortex_vault.issue_context_token(uuid, text, integer),
                          cortex_vault.enable_org_isolation(regclass, name),
                          cortex_vault.enable_deployment_isolation(regclass, name),
                          cortex_vault.disable_org_isolation(regclass),
                          cortex_vault.isolation_report(),
                          cortex_vault.enable_audit(regclass),
                          cortex_vault._isolation_target(regclass, name, text[]),
                          cortex_vault._has_policy(regclass, name),
                          cortex_vault._drop_policy(regclass, name),
                          cortex_vault._policy_def(regclass, name),
                          cortex_vault._children(regclass),
                          cortex_vault._refuse_truncate(),
                          cortex_vault._audit_row_change() TO cortex_vault_admin;
GRANT EXECUTE ON FUNCTION cortex_vault.export_org_data(),
                          cortex_vault._record_export() TO cortex_vault_admin, cortex_vault_writer;
GRANT SELECT ON cortex_vault.role_bindings TO cortex_vault_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON cortex_vault.isolated_tables TO cortex_vault_admin;
GRANT SELECT ON cortex_vault.isolated_tables TO cortex_vault_writer;

COMMENT ON SCHEMA cortex_vault IS 'Encrypted, organization-scoped secrets, audit trail and isolation helpers';
COMMENT ON TABLE cortex_vault.orgs IS 'Registered organizations (tenants)';
COMMENT ON TABLE cortex_vault.org_keys IS 'Organization keys, wrapped by a master key version named by its fingerprint';
COMMENT ON TABLE cortex_vault.secrets IS 'Secret metadata; values live encrypted in secret_versions';
COMMENT ON TABLE cortex_vault.secret_versions IS 'Every stored version of every secret value, as XChaCha20-Poly1305 ciphertext';
COMMENT ON TABLE cortex_vault.audit_log IS 'Append-only audit trail, isolated per organization; never holds a value';
COMMENT ON VIEW cortex_vault.secret_metadata IS 'Secrets of the organization in context, without values';
COMMENT ON FUNCTION cortex_vault.current_org_id() IS 'Organization in context as uuid; NULL when unset or empty';
COMMENT ON FUNCTION cortex_vault.current_deployment_id() IS 'Deployment in context; NULL when unset or empty';
COMMENT ON FUNCTION cortex_vault.create_org(uuid, text) IS 'Registers an organization and stores its wrapped key';
COMMENT ON FUNCTION cortex_vault.rotate_master_key() IS 'Rewraps every organization key under the newest master key version';
COMMENT ON FUNCTION cortex_vault.rotate_org_key() IS 'Re-encrypts the organization''s stored values under a fresh key';
COMMENT ON FUNCTION cortex_vault.shred_org(uuid) IS 'Destroys an organization''s key and all of its secrets';
COMMENT ON FUNCTION cortex_vault.create_secret(text, text, text, text, text) IS 'Encrypts and stores a new secret for the organization in context';
COMMENT ON FUNCTION cortex_vault.read_secret(uuid) IS 'Decrypts a secret visible to the organization and deployment in context';
COMMENT ON FUNCTION cortex_vault.read_secret_by_name(text, text) IS 'Decrypts a secret found by name: the deployment''s own first, then organization-wide';
COMMENT ON FUNCTION cortex_vault.rotate_secret(uuid, text, integer) IS 'Stores a new version of a secret, with optional check-and-set';
COMMENT ON FUNCTION cortex_vault.delete_secret(uuid) IS 'Destroys a secret and every stored version of it';
COMMENT ON TABLE cortex_vault.role_bindings IS 'Roles bound to organizations; a bound role acts only for these';
COMMENT ON TABLE cortex_vault.isolated_tables IS 'Application tables under the isolation helpers, and what the helpers changed';
COMMENT ON FUNCTION cortex_vault.bind_role(text, uuid) IS 'Binds a database role to an organization';
COMMENT ON FUNCTION cortex_vault.unbind_role(text, uuid) IS 'Removes a role''s binding to an organization';
COMMENT ON FUNCTION cortex_vault.issue_context_token(uuid, text, integer) IS 'Signs a context token with the newest token key';
COMMENT ON FUNCTION cortex_vault.enable_org_isolation(regclass, name) IS 'Enables and forces row-level security with the organization policy; idempotent';
COMMENT ON FUNCTION cortex_vault.enable_deployment_isolation(regclass, name) IS 'Adds per-deployment scoping on top of organization isolation';
COMMENT ON FUNCTION cortex_vault.disable_org_isolation(regclass) IS 'Removes what the isolation helpers added';
COMMENT ON FUNCTION cortex_vault.isolation_report() IS 'One row per table with an organization column: RLS state, policies, problems';
COMMENT ON FUNCTION cortex_vault.enable_audit(regclass) IS 'Attaches the audit trigger to an application table';
COMMENT ON FUNCTION cortex_vault.export_org_data() IS 'The current organization''s rows of every isolated table, as JSON';
COMMENT ON FUNCTION cortex_vault.sealing_public_key() IS 'X25519 public key that clients seal values to (libsodium sealed box)';
COMMENT ON FUNCTION cortex_vault.create_secret_sealed(text, bytea, text, text, text) IS 'create_secret with the value sealed to sealing_public_key()';
COMMENT ON FUNCTION cortex_vault.rotate_secret_sealed(uuid, bytea, integer) IS 'rotate_secret with the new value sealed to sealing_public_key()';
