//! The sealed variants of create and rotate, and the public key they use.
//!
//! A client seals `organization id (16 bytes) || value` to the vault's public
//! key; the vault opens it only for that organization, so a sealed box
//! captured from one organization's request cannot be stored in another's.

use crate::context;
use crate::crypto::sealed;
use crate::errors::{or_raise, required, VaultError, VaultResult};
use crate::keys;
use pgrx::prelude::*;
use pgrx::Uuid;
use zeroize::Zeroizing;

/// The X25519 public key to seal values to: 32 bytes, derived from the
/// newest master key version. Any role may read it.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn sealing_public_key() -> Vec<u8> {
    or_raise(keys::newest().map(|m| sealed::public_key(&m.key).to_vec()))
}

/// `create_secret` with the value sealed to `sealing_public_key()`.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn create_secret_sealed(
    name: Option<&str>,
    sealed_secret: Option<&[u8]>,
    deployment_id: default!(Option<&str>, "NULL"),
    provider: default!(Option<&str>, "NULL"),
    description: default!(Option<&str>, "NULL"),
) -> Uuid {
    or_raise(required(sealed_secret, "sealed_secret").and_then(open).and_then(|value| {
        crate::secrets::create(name, Some(text(&value)?), deployment_id, provider, description)
    }))
}

/// `rotate_secret` with the new value sealed to `sealing_public_key()`.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn rotate_secret_sealed(
    secret_id: Option<Uuid>,
    sealed_secret: Option<&[u8]>,
    expected_version: default!(Option<i32>, "NULL"),
) -> i32 {
    or_raise(
        required(sealed_secret, "sealed_secret").and_then(open).and_then(|value| {
            crate::secrets::rotate(secret_id, Some(text(&value)?), expected_version)
        }),
    )
}

/// Opens a sealed value with the newest master key version, then the older
/// ones, so a client holding the previous public key still succeeds.
fn open(sealed_value: &[u8]) -> VaultResult<Zeroizing<Vec<u8>>> {
    let ring = keys::all()?;
    ring.iter().rev().find_map(|m| sealed::unseal(&m.key, sealed_value).ok()).ok_or_else(|| {
        VaultError::InvalidArgument {
            message: "sealed value could not be opened".into(),
            detail: "It was not sealed to a public key of this server, or it was changed.".into(),
        }
    })
}

/// The value inside an opened box, once its organization prefix matches the
/// organization in context.
fn text(opened: &[u8]) -> VaultResult<&str> {
    let ctx = context::require()?;
    let (org, value) = opened.split_at_checked(16).ok_or_else(|| VaultError::InvalidArgument {
        message: "sealed value has no organization prefix".into(),
        detail: "Seal the 16 bytes of the organization id followed by the value.".into(),
    })?;
    if org != ctx.org.as_bytes() {
        return Err(VaultError::InvalidArgument {
            message: "sealed value was made for another organization".into(),
            detail: "Seal the value with the organization id of the context.".into(),
        });
    }
    std::str::from_utf8(value).map_err(|_| VaultError::InvalidArgument {
        message: "sealed value is not UTF-8 text".into(),
        detail: "Seal the UTF-8 bytes of the value.".into(),
    })
}
