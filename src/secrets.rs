//! The secret functions of the SQL surface. Each one checks its arguments and
//! the context as the caller, then does its storage steps as the vault owner.
//! Duties are EXECUTE grants: a writer holds no grant on the read functions.

use crate::audit::{self, Event};
use crate::context::{self, Context, MAX_LABEL_BYTES};
use crate::crypto::{self, SecretBinding};
use crate::elevate::as_vault_owner;
use crate::errors::{or_raise, required, VaultError, VaultResult};
use crate::keys::org::{self, Lock, OrgKey, Wrapped};
use crate::plaintext::Plaintext;
use pgrx::prelude::*;
use pgrx::Uuid;

/// Largest secret value accepted, in bytes: provider keys are under 1 KiB,
/// service-account JSON files a few KiB; 64 KiB leaves room without letting
/// the vault become a file store.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Longest description accepted, in bytes.
const MAX_DESCRIPTION_BYTES: usize = 1024;

/// Encrypts and stores a new secret of the organization in context.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn create_secret(
    name: Option<&str>,
    secret: Option<&str>,
    deployment_id: default!(Option<&str>, "NULL"),
    provider: default!(Option<&str>, "NULL"),
    description: default!(Option<&str>, "NULL"),
) -> Uuid {
    or_raise(create(name, secret, deployment_id, provider, description))
}

/// Creates a secret; shared by the plain and sealed entry points.
pub(crate) fn create(
    name: Option<&str>,
    secret: Option<&str>,
    deployment: Option<&str>,
    provider: Option<&str>,
    description: Option<&str>,
) -> VaultResult<Uuid> {
    crate::redact::mask_activity();
    let name = label(required(name, "name")?, "name", MAX_LABEL_BYTES)?;
    let secret = value(required(secret, "secret")?)?;
    let deployment = deployment.map(|d| label(d, "deployment_id", MAX_LABEL_BYTES)).transpose()?;
    let provider = provider.map(|p| label(p, "provider", MAX_LABEL_BYTES)).transpose()?;
    let description = description.map(|d| text_limit(d, "description")).transpose()?;
    let ctx = context::require()?;

    as_vault_owner(|| {
        let key = org::load(&ctx.org, Lock::Share)?;
        let id = random_uuid()?;
        let sealed = seal(&key, &ctx.org, &id, deployment, 1, secret)?;
        insert_secret(&ctx.org, &id, deployment, name, provider, description)?;
        insert_version(&ctx.org, &id, 1, key.version, &sealed)?;
        Ok(id)
    })
}

/// Decrypts a secret for a reader whose context matches its organization
/// and deployment.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn read_secret(secret_id: Option<Uuid>) -> Plaintext {
    or_raise(read_by_id(secret_id))
}

fn read_by_id(secret_id: Option<Uuid>) -> VaultResult<Plaintext> {
    crate::redact::mark_statement();
    let id = required(secret_id, "secret_id")?;
    let ctx = context::require()?;
    as_vault_owner(|| {
        let row = fetch(FETCH_BY_ID, &[pg_sys::UUIDOID; 2], &[ctx.org.into(), id.into()])?;
        reveal(&ctx, row, Some(&id))
    })
}

/// Decrypts a secret found by name: the deployment's own secret first, then
/// an organization-wide one of that name.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn read_secret_by_name(
    name: Option<&str>,
    deployment_id: default!(Option<&str>, "NULL"),
) -> Plaintext {
    or_raise(read_by_name(name, deployment_id))
}

fn read_by_name(name: Option<&str>, deployment: Option<&str>) -> VaultResult<Plaintext> {
    crate::redact::mark_statement();
    let name = required(name, "name")?;
    let ctx = context::require()?;
    as_vault_owner(|| {
        // Naming a deployment other than the one in context finds nothing,
        // exactly like a name that does not exist.
        if deployment.is_some() && deployment != ctx.deployment.as_deref() {
            return reveal(&ctx, None, None);
        }
        let args = [ctx.org.into(), name.into(), ctx.deployment.as_deref().into()];
        let types = [pg_sys::UUIDOID, pg_sys::TEXTOID, pg_sys::TEXTOID];
        let row = fetch(FETCH_BY_NAME, &types, &args)?;
        reveal(&ctx, row, None)
    })
}

/// Stores a new version of a secret; with `expected_version`, only if the
/// current version is that one (check-and-set). Returns the new version.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn rotate_secret(
    secret_id: Option<Uuid>,
    new_secret: Option<&str>,
    expected_version: default!(Option<i32>, "NULL"),
) -> i32 {
    or_raise(rotate(secret_id, new_secret, expected_version))
}

/// Rotates a secret; shared by the plain and sealed entry points.
pub(crate) fn rotate(
    id: Option<Uuid>,
    new_secret: Option<&str>,
    expected: Option<i32>,
) -> VaultResult<i32> {
    crate::redact::mask_activity();
    let id = required(id, "secret_id")?;
    let secret = value(required(new_secret, "new_secret")?)?;
    let ctx = context::require()?;

    as_vault_owner(|| {
        let key = org::load(&ctx.org, Lock::Share)?;
        let Some((deployment, current)) = lock_secret(&ctx.org, &id)? else {
            audit::denied(Some(&ctx.org), ctx.deployment.as_deref(), Some(&id), "rotate");
            return Err(VaultError::SecretNotFound);
        };
        if let Some(expected) = expected.filter(|e| *e != current) {
            return Err(VaultError::VersionConflict { expected, actual: current });
        }
        let next = current.checked_add(1).ok_or_else(|| VaultError::InvalidArgument {
            message: "secret has reached its last version".into(),
            detail: "Create a new secret to replace it.".into(),
        })?;
        let sealed = seal(&key, &ctx.org, &id, deployment.as_deref(), next, secret)?;
        insert_version(&ctx.org, &id, next, key.version, &sealed)?;
        set_version(&ctx.org, &id, next)?;
        Ok(next)
    })
}

/// Destroys a secret and every stored version of it.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn delete_secret(secret_id: Option<Uuid>) {
    or_raise(delete(secret_id))
}

fn delete(id: Option<Uuid>) -> VaultResult<()> {
    let id = required(id, "secret_id")?;
    let ctx = context::require()?;
    as_vault_owner(|| {
        let deleted = Spi::get_one_with_args::<bool>(
            "WITH d AS (DELETE FROM cortex_vault.secrets WHERE org_id = $1 AND id = $2 \
             RETURNING 1) SELECT count(*) > 0 FROM d",
            &[ctx.org.into(), id.into()],
        )?;
        if deleted != Some(true) {
            audit::denied(Some(&ctx.org), ctx.deployment.as_deref(), Some(&id), "delete");
            return Err(VaultError::SecretNotFound);
        }
        Ok(())
    })
}

/// What a read needs from storage, in one query.
struct Stored {
    id: Uuid,
    deployment: Option<String>,
    version: i32,
    org_key_version: i32,
    ciphertext: Vec<u8>,
    wrapped: Wrapped,
}

/// The columns and joins of both read queries, as a literal for `concat!`.
macro_rules! fetch_sql {
    () => {
        "SELECT s.id, s.deployment_id, s.version, v.org_key_version, v.ciphertext, \
         k.master_fingerprint, k.wrapped_key \
         FROM cortex_vault.secrets s \
         JOIN cortex_vault.secret_versions v \
           ON v.org_id = s.org_id AND v.secret_id = s.id AND v.version = s.version \
         JOIN cortex_vault.org_keys k ON k.org_id = s.org_id"
    };
}

const FETCH_BY_ID: &str = concat!(fetch_sql!(), " WHERE s.org_id = $1 AND s.id = $2");

const FETCH_BY_NAME: &str = concat!(
    fetch_sql!(),
    " WHERE s.org_id = $1 AND s.name = $2 \
     AND (s.deployment_id = $3 OR s.deployment_id IS NULL) \
     ORDER BY s.deployment_id NULLS LAST LIMIT 1"
);

fn fetch(
    query: &'static str,
    types: &[pg_sys::Oid],
    args: &[pgrx::datum::DatumWithOid],
) -> VaultResult<Option<Stored>> {
    crate::plans::run(query, types, args, |rows| {
        if rows.is_empty() {
            return Ok(None);
        }
        let row = rows.first();
        let missing = || VaultError::Internal("a stored secret row is incomplete".into());
        Ok(Some(Stored {
            id: row.get::<Uuid>(1)?.ok_or_else(missing)?,
            deployment: row.get::<String>(2)?,
            version: row.get::<i32>(3)?.ok_or_else(missing)?,
            org_key_version: row.get::<i32>(4)?.ok_or_else(missing)?,
            ciphertext: row.get::<Vec<u8>>(5)?.ok_or_else(missing)?,
            wrapped: Wrapped {
                fingerprint: row.get::<String>(6)?.ok_or_else(missing)?,
                blob: row.get::<Vec<u8>>(7)?.ok_or_else(missing)?,
            },
        }))
    })
}

/// Checks visibility, decrypts, and records the read. A secret that does
/// not exist and one the context may not see give the same error.
fn reveal(ctx: &Context, row: Option<Stored>, asked: Option<&Uuid>) -> VaultResult<Plaintext> {
    let Some(row) = row.filter(|r| visible(ctx, r.deployment.as_deref())) else {
        audit::denied(Some(&ctx.org), ctx.deployment.as_deref(), asked, "read");
        return Err(VaultError::SecretNotFound);
    };
    let key = org::unwrap(&ctx.org, row.org_key_version, &row.wrapped)?;
    let binding = SecretBinding {
        org: *ctx.org.as_bytes(),
        secret: *row.id.as_bytes(),
        deployment: row.deployment.as_deref(),
        version: row.version,
        org_key_version: key.version,
    };
    let plain = crypto::open(&key.key, &row.ciphertext, &binding.encode())?;
    audit::record(&Event {
        org: &ctx.org,
        deployment: ctx.deployment.as_deref(),
        secret: Some(&row.id),
        operation: "read",
    })?;
    Ok(Plaintext(plain))
}

/// An organization-wide secret is visible to every deployment of its
/// organization; a deployment's secret only with that deployment in context.
fn visible(ctx: &Context, secret_deployment: Option<&str>) -> bool {
    match secret_deployment {
        None => true,
        Some(d) => ctx.deployment.as_deref() == Some(d),
    }
}

fn seal(
    key: &OrgKey,
    org: &Uuid,
    id: &Uuid,
    deployment: Option<&str>,
    version: i32,
    secret: &str,
) -> VaultResult<Vec<u8>> {
    let binding = SecretBinding {
        org: *org.as_bytes(),
        secret: *id.as_bytes(),
        deployment,
        version,
        org_key_version: key.version,
    };
    Ok(crypto::seal(&key.key, secret.as_bytes(), &binding.encode())?)
}

fn insert_secret(
    org: &Uuid,
    id: &Uuid,
    deployment: Option<&str>,
    name: &str,
    provider: Option<&str>,
    description: Option<&str>,
) -> VaultResult<()> {
    use pg_sys::{TEXTOID, UUIDOID};
    let inserted = crate::plans::run(
        "INSERT INTO cortex_vault.secrets \
         (org_id, id, deployment_id, name, provider, description, version, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7) \
         ON CONFLICT ON CONSTRAINT secrets_name_key DO NOTHING RETURNING 1",
        &[UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID],
        &[
            (*org).into(),
            (*id).into(),
            deployment.into(),
            name.into(),
            provider.into(),
            description.into(),
            crate::elevate::audit_user().into(),
        ],
        |rows| Ok(!rows.is_empty()),
    )?;
    if inserted {
        Ok(())
    } else {
        Err(VaultError::DuplicateName)
    }
}

fn insert_version(org: &Uuid, id: &Uuid, version: i32, okv: i32, sealed: &[u8]) -> VaultResult<()> {
    use pg_sys::{BYTEAOID, INT4OID, UUIDOID};
    crate::plans::run(
        "INSERT INTO cortex_vault.secret_versions \
         (org_id, secret_id, version, org_key_version, ciphertext) VALUES ($1, $2, $3, $4, $5)",
        &[UUIDOID, UUIDOID, INT4OID, INT4OID, BYTEAOID],
        &[(*org).into(), (*id).into(), version.into(), okv.into(), sealed.into()],
        |_| Ok(()),
    )
}

/// Locks a secret row for rotation; its deployment and current version.
fn lock_secret(org: &Uuid, id: &Uuid) -> VaultResult<Option<(Option<String>, i32)>> {
    Spi::connect_mut(|client| -> VaultResult<_> {
        let rows = client.update(
            "SELECT deployment_id, version FROM cortex_vault.secrets \
             WHERE org_id = $1 AND id = $2 FOR UPDATE",
            Some(1),
            &[(*org).into(), (*id).into()],
        )?;
        if rows.is_empty() {
            return Ok(None);
        }
        let (deployment, version) = rows.first().get_two::<String, i32>()?;
        Ok(version.map(|v| (deployment, v)))
    })
}

fn set_version(org: &Uuid, id: &Uuid, version: i32) -> VaultResult<()> {
    Spi::run_with_args(
        "UPDATE cortex_vault.secrets SET version = $3, updated_at = pg_catalog.now(), \
         updated_by = $4 WHERE org_id = $1 AND id = $2",
        &[(*org).into(), (*id).into(), version.into(), crate::elevate::audit_user().into()],
    )?;
    Ok(())
}

/// A random (version 4) uuid for a new secret.
fn random_uuid() -> VaultResult<Uuid> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|_| VaultError::Random)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(Uuid::from_bytes(bytes))
}

/// A non-empty label of at most `max` bytes without control characters.
fn label<'a>(text: &'a str, arg: &'static str, max: usize) -> VaultResult<&'a str> {
    let padded = text.trim() != text;
    if text.is_empty() || padded || text.len() > max || text.chars().any(char::is_control) {
        return Err(VaultError::InvalidArgument {
            message: format!("argument \"{arg}\" is not a valid label"),
            detail: format!(
                "It must be 1 to {max} bytes long, without leading or trailing spaces or \
                 control characters."
            ),
        });
    }
    Ok(text)
}

fn text_limit<'a>(text: &'a str, arg: &'static str) -> VaultResult<&'a str> {
    if text.len() > MAX_DESCRIPTION_BYTES {
        return Err(VaultError::InvalidArgument {
            message: format!("argument \"{arg}\" is too long"),
            detail: format!("It may be at most {MAX_DESCRIPTION_BYTES} bytes long."),
        });
    }
    Ok(text)
}

/// A secret value: not empty, at most [`MAX_SECRET_BYTES`]. The error never
/// quotes the value.
fn value(secret: &str) -> VaultResult<&str> {
    if secret.is_empty() || secret.len() > MAX_SECRET_BYTES {
        return Err(VaultError::InvalidArgument {
            message: "secret value is empty or too long".into(),
            detail: format!("A value must be 1 to {MAX_SECRET_BYTES} bytes long."),
        });
    }
    Ok(secret)
}
