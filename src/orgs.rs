//! Organizations and their keys: the administrator's functions.

use crate::audit::{self, Event};
use crate::context;
use crate::crypto::{self, SecretBinding};
use crate::elevate::as_vault_owner;
use crate::errors::{or_raise, required, VaultError, VaultResult};
use crate::keys::org::{self, Lock, OrgKey, Wrapped};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::Uuid;

/// Registers an organization and stores its new key, wrapped.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn create_org(
    org_id: default!(Option<Uuid>, "pg_catalog.gen_random_uuid()"),
    name: default!(Option<&str>, "NULL"),
) -> Uuid {
    or_raise(create(org_id, name))
}

fn create(org_id: Option<Uuid>, name: Option<&str>) -> VaultResult<Uuid> {
    let org = required(org_id, "org_id")?;
    as_vault_owner(|| {
        let inserted = Spi::get_one_with_args::<bool>(
            "WITH i AS (INSERT INTO cortex_vault.orgs (org_id, name) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) > 0 FROM i",
            &[org.into(), name.into()],
        )?;
        if inserted != Some(true) {
            return Err(VaultError::OrgExists);
        }
        let (_, wrapped) = org::generate(&org, 1)?;
        store_key(&org, 1, &wrapped, "INSERT")?;
        audit::record(&Event {
            org: &org,
            deployment: None,
            secret: None,
            operation: "create_org",
        })?;
        Ok(org)
    })
}

/// Rewraps every organization key under the newest master key version.
/// Secrets are not touched: cost grows with organizations only.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn rotate_master_key() -> i64 {
    or_raise(rotate_master())
}

fn rotate_master() -> VaultResult<i64> {
    as_vault_owner(|| {
        let newest = crate::keys::newest()?;
        let newest_fp = crate::keys::master::fingerprint_hex(&newest.fingerprint);
        let stale = stale_keys(&newest_fp)?;
        for (org, version, wrapped) in &stale {
            if let Some(rewrapped) = org::rewrap(org, *version, wrapped)? {
                store_key(org, *version, &rewrapped, "UPDATE")?;
                let event =
                    Event { org, deployment: None, secret: None, operation: "rotate_master_key" };
                audit::record(&event)?;
            }
        }
        log!(
            "cortex_vault: rewrapped {} organization key(s) under master key version {newest_fp}",
            stale.len()
        );
        Ok(stale.len() as i64)
    })
}

/// Organization keys not wrapped by the newest master key, locked.
fn stale_keys(newest_fp: &str) -> VaultResult<Vec<(Uuid, i32, Wrapped)>> {
    Spi::connect_mut(|client| -> VaultResult<_> {
        let rows = client.update(
            "SELECT org_id, key_version, master_fingerprint, wrapped_key \
             FROM cortex_vault.org_keys WHERE master_fingerprint <> $1 ORDER BY org_id FOR UPDATE",
            None,
            &[newest_fp.into()],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (Some(org), Some(version), Some(fingerprint), Some(blob)) = (
                row.get::<Uuid>(1)?,
                row.get::<i32>(2)?,
                row.get::<String>(3)?,
                row.get::<Vec<u8>>(4)?,
            ) else {
                return Err(VaultError::Internal("an organization key row is incomplete".into()));
            };
            out.push((org, version, Wrapped { fingerprint, blob }));
        }
        Ok(out)
    })
}

/// Re-encrypts every stored value of the organization in context under a
/// fresh organization key. Returns how many values were re-encrypted.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn rotate_org_key() -> i64 {
    or_raise(rotate_org())
}

fn rotate_org() -> VaultResult<i64> {
    let ctx = context::require()?;
    as_vault_owner(|| {
        let old = org::load(&ctx.org, Lock::Update)?;
        let (new, wrapped) = org::generate(&ctx.org, old.version + 1)?;
        let values = stored_values(&ctx.org)?;
        for stored in &values {
            reencrypt(&ctx.org, stored, &old, &new)?;
        }
        store_key(&ctx.org, new.version, &wrapped, "UPDATE")?;
        let event =
            Event { org: &ctx.org, deployment: None, secret: None, operation: "rotate_org_key" };
        audit::record(&event)?;
        Ok(values.len() as i64)
    })
}

/// One stored version of a secret value.
struct StoredValue {
    secret: Uuid,
    version: i32,
    deployment: Option<String>,
    ciphertext: Vec<u8>,
}

fn stored_values(org: &Uuid) -> VaultResult<Vec<StoredValue>> {
    Spi::connect_mut(|client| -> VaultResult<_> {
        let rows = client.update(
            "SELECT v.secret_id, v.version, s.deployment_id, v.ciphertext \
             FROM cortex_vault.secret_versions v JOIN cortex_vault.secrets s \
               ON s.org_id = v.org_id AND s.id = v.secret_id \
             WHERE v.org_id = $1 FOR UPDATE OF v",
            None,
            &[(*org).into()],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (Some(secret), Some(version), Some(ciphertext)) =
                (row.get::<Uuid>(1)?, row.get::<i32>(2)?, row.get::<Vec<u8>>(4)?)
            else {
                return Err(VaultError::Internal("a secret version row is incomplete".into()));
            };
            out.push(StoredValue { secret, version, deployment: row.get(3)?, ciphertext });
        }
        Ok(out)
    })
}

fn reencrypt(org: &Uuid, v: &StoredValue, old: &OrgKey, new: &OrgKey) -> VaultResult<()> {
    let mut binding = SecretBinding {
        org: *org.as_bytes(),
        secret: *v.secret.as_bytes(),
        deployment: v.deployment.as_deref(),
        version: v.version,
        org_key_version: old.version,
    };
    let plain = crypto::open(&old.key, &v.ciphertext, &binding.encode())?;
    binding.org_key_version = new.version;
    let sealed = crypto::seal(&new.key, &plain, &binding.encode())?;
    Spi::run_with_args(
        "UPDATE cortex_vault.secret_versions SET ciphertext = $4, org_key_version = $5 \
         WHERE org_id = $1 AND secret_id = $2 AND version = $3",
        &[(*org).into(), v.secret.into(), v.version.into(), sealed.into(), new.version.into()],
    )?;
    Ok(())
}

/// Destroys an organization's key and every secret of it. The audit trail
/// of the organization stays.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn shred_org(org_id: Option<Uuid>) {
    or_raise(shred(org_id))
}

fn shred(org_id: Option<Uuid>) -> VaultResult<()> {
    let org = required(org_id, "org_id")?;
    as_vault_owner(|| {
        org::lock_for_shred(&org)?;
        let args: [DatumWithOid; 1] = [org.into()];
        Spi::run_with_args("DELETE FROM cortex_vault.secrets WHERE org_id = $1", &args)?;
        Spi::run_with_args("DELETE FROM cortex_vault.org_keys WHERE org_id = $1", &args)?;
        Spi::run_with_args(
            "UPDATE cortex_vault.orgs SET shredded_at = pg_catalog.now() WHERE org_id = $1",
            &args,
        )?;
        audit::record(&Event {
            org: &org,
            deployment: None,
            secret: None,
            operation: "shred_org",
        })?;
        log!("cortex_vault: organization {org} shredded; its key and secrets were destroyed");
        Ok(())
    })
}

/// Writes an organization key row; `verb` is INSERT for a new organization.
fn store_key(org: &Uuid, version: i32, wrapped: &Wrapped, verb: &str) -> VaultResult<()> {
    let query = if verb == "INSERT" {
        "INSERT INTO cortex_vault.org_keys (org_id, key_version, master_fingerprint, wrapped_key) \
         VALUES ($1, $2, $3, $4)"
    } else {
        "UPDATE cortex_vault.org_keys SET key_version = $2, master_fingerprint = $3, \
         wrapped_key = $4, updated_at = pg_catalog.now() WHERE org_id = $1"
    };
    Spi::run_with_args(
        query,
        &[
            (*org).into(),
            version.into(),
            wrapped.fingerprint.as_str().into(),
            wrapped.blob.as_slice().into(),
        ],
    )?;
    Ok(())
}
