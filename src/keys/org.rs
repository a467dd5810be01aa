//! Organization keys: 32 random bytes per organization, stored only wrapped
//! by a master key version whose fingerprint is kept beside the wrap.

use super::master::fingerprint_hex;
use crate::crypto::{self, Key, KeyBinding};
use crate::errors::{VaultError, VaultResult};
use pgrx::prelude::*;
use pgrx::IntoDatum;
use pgrx::Uuid;

/// The organization key row, as a literal for `concat!`.
macro_rules! load_sql {
    () => {
        "SELECT key_version, master_fingerprint, wrapped_key \
         FROM cortex_vault.org_keys WHERE org_id = $1"
    };
}

/// An unwrapped organization key and its version.
pub struct OrgKey {
    /// The key; wiped when dropped.
    pub key: Key,
    /// Raised by every `rotate_org_key()`; bound into each secret's ciphertext.
    pub version: i32,
}

/// A wrapped organization key as stored in `org_keys`.
pub struct Wrapped {
    /// Fingerprint of the master key version that wraps it.
    pub fingerprint: String,
    /// The wrapped bytes.
    pub blob: Vec<u8>,
}

fn binding(org: &Uuid, version: i32, fingerprint: [u8; 8]) -> KeyBinding {
    KeyBinding { org: *org.as_bytes(), org_key_version: version, master_fingerprint: fingerprint }
}

/// Draws a new organization key and wraps it under the newest master key.
pub fn generate(org: &Uuid, version: i32) -> VaultResult<(OrgKey, Wrapped)> {
    let master = super::newest()?;
    let key = Key::generate()?;
    let blob = crypto::wrap_key(&master.key, &key, &binding(org, version, master.fingerprint))?;
    let wrapped = Wrapped { fingerprint: fingerprint_hex(&master.fingerprint), blob };
    Ok((OrgKey { key, version }, wrapped))
}

/// Unwraps a stored organization key; names the master key version it needs
/// when that version is not loaded.
pub fn unwrap(org: &Uuid, version: i32, wrapped: &Wrapped) -> VaultResult<OrgKey> {
    let master = super::by_fingerprint(&wrapped.fingerprint)?;
    let key =
        crypto::unwrap_key(&master.key, &wrapped.blob, &binding(org, version, master.fingerprint))?;
    Ok(OrgKey { key, version })
}

/// Wraps an organization key again under the newest master key version;
/// `None` when it is wrapped by that version already.
pub fn rewrap(org: &Uuid, version: i32, wrapped: &Wrapped) -> VaultResult<Option<Wrapped>> {
    let newest = super::newest()?;
    let newest_fp = fingerprint_hex(&newest.fingerprint);
    if wrapped.fingerprint == newest_fp {
        return Ok(None);
    }
    let current = unwrap(org, version, wrapped)?;
    let blob =
        crypto::wrap_key(&newest.key, &current.key, &binding(org, version, newest.fingerprint))?;
    Ok(Some(Wrapped { fingerprint: newest_fp, blob }))
}

/// How `load` serialises value writers with key rotation and shredding.
#[derive(Clone, Copy)]
pub enum Lock {
    /// Writers of secret values: a shared advisory lock on the organization,
    /// so no key rotation runs until they commit. Advisory locks live in
    /// memory: unlike a row lock they write nothing to the table or the WAL.
    Share,
    /// Key rotation and shredding: the exclusive advisory lock, and the key
    /// row locked for update.
    Update,
}

/// First key of the vault's transaction-level advisory locks ("CVLT"); the
/// second is folded from the organization id. A collision with another
/// user of advisory locks costs waiting, never correctness.
const LOCK_CLASS: i32 = 0x4356_4c54;

/// Takes the organization's advisory lock until the transaction ends.
pub fn lock_org(org: &Uuid, lock: Lock) {
    let b = org.as_bytes();
    let folded = [
        b[0] ^ b[4] ^ b[8] ^ b[12],
        b[1] ^ b[5] ^ b[9] ^ b[13],
        b[2] ^ b[6] ^ b[10] ^ b[14],
        b[3] ^ b[7] ^ b[11] ^ b[15],
    ];
    let key = i32::from_be_bytes(folded);
    let function = match lock {
        Lock::Share => pg_sys::pg_advisory_xact_lock_shared_int4,
        Lock::Update => pg_sys::pg_advisory_xact_lock_int4,
    };
    // SAFETY: both advisory lock functions take two non-null int4 and
    // return void; the lock is released at transaction end.
    unsafe {
        pgrx::fcinfo::direct_function_call_as_datum(
            function,
            &[LOCK_CLASS.into_datum(), key.into_datum()],
        );
    }
}

/// Loads and unwraps the key of a registered, unshredded organization,
/// locking its row so that key rotation and value writes serialise.
pub fn load(org: &Uuid, lock: Lock) -> VaultResult<OrgKey> {
    lock_org(org, lock);
    let query = match lock {
        Lock::Share => load_sql!(),
        Lock::Update => concat!(load_sql!(), " FOR UPDATE"),
    };
    let row = crate::plans::run(query, &[pg_sys::UUIDOID], &[(*org).into()], |rows| {
        if rows.is_empty() {
            return Ok(None);
        }
        match rows.first().get_three::<i32, String, Vec<u8>>()? {
            (Some(v), Some(fp), Some(blob)) => Ok(Some((v, Wrapped { fingerprint: fp, blob }))),
            _ => Ok(None),
        }
    })?;
    match row {
        Some((version, wrapped)) => unwrap(org, version, &wrapped),
        None => Err(org_state(org)?),
    }
}

/// Why an organization has no usable key: unknown or shredded.
fn org_state(org: &Uuid) -> VaultResult<VaultError> {
    let shredded = Spi::get_one_with_args::<bool>(
        "SELECT (SELECT shredded_at IS NOT NULL FROM cortex_vault.orgs WHERE org_id = $1)",
        &[(*org).into()],
    )?;
    Ok(match shredded {
        Some(true) => VaultError::OrgShredded,
        _ => VaultError::UnknownOrg,
    })
}

/// Locks a registered, unshredded organization's row before it is shredded.
pub fn lock_for_shred(org: &Uuid) -> VaultResult<()> {
    lock_org(org, Lock::Update);
    let state = Spi::connect_mut(|client| -> VaultResult<Option<bool>> {
        let rows = client.update(
            "SELECT shredded_at IS NOT NULL FROM cortex_vault.orgs WHERE org_id = $1 FOR UPDATE",
            Some(1),
            &[(*org).into()],
        )?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(rows.first().get_one::<bool>()?)
    })?;
    match state {
        Some(false) => Ok(()),
        Some(true) => Err(VaultError::OrgShredded),
        None => Err(VaultError::UnknownOrg),
    }
}
