//! Master key ring and organization keys.
//!
//! The postmaster loads the master key versions once, while it processes
//! `shared_preload_libraries`; every backend inherits them through fork. The
//! keys never enter a table, a setting's value or a log line: only their
//! fingerprints do.

pub mod master;
pub mod org;

use crate::errors::{VaultError, VaultResult};
use crate::settings;
use master::{fingerprint_hex, MasterKey, SourceError};
use pgrx::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The loaded key versions, oldest first, or why none could be loaded.
static KEYRING: OnceLock<Result<Vec<MasterKey>, String>> = OnceLock::new();

/// Whether `_PG_init` ran in the postmaster as a preloaded library.
static PRELOADED: AtomicBool = AtomicBool::new(false);

/// Loads the master key at server start and logs the fingerprints.
pub fn load_at_start() {
    PRELOADED.store(true, Ordering::Relaxed);
    let loaded = read_sources();
    match &loaded {
        Ok(keys) => {
            let fps: Vec<String> = keys.iter().map(|k| fingerprint_hex(&k.fingerprint)).collect();
            log!(
                "cortex_vault: loaded {} master key version(s); newest fingerprint {}",
                keys.len(),
                fps.last().map(String::as_str).unwrap_or("")
            );
        }
        Err(reason) => {
            warning!("cortex_vault: no master key loaded: {reason}; fix the source and restart")
        }
    }
    let _ = KEYRING.set(loaded);
}

/// Reads whichever source is configured; the file wins when both are set.
fn read_sources() -> Result<Vec<MasterKey>, String> {
    let file = settings::non_empty(&settings::MASTER_KEY_FILE);
    let command = settings::non_empty(&settings::MASTER_KEY_COMMAND);
    match (file, command) {
        (Some(path), _) => master::read_key_file(&path)
            .map_err(|e: SourceError| format!("cortex_vault.master_key_file is unusable: {e}")),
        (None, Some(cmd)) => master::run_key_command(&cmd)
            .map_err(|e| format!("cortex_vault.master_key_command is unusable: {e}")),
        (None, None) => Err("neither cortex_vault.master_key_file nor \
                             cortex_vault.master_key_command is set"
            .into()),
    }
}

/// The loaded key versions, oldest first.
fn ring() -> VaultResult<&'static [MasterKey]> {
    if !PRELOADED.load(Ordering::Relaxed) {
        return Err(VaultError::NotPreloaded);
    }
    match KEYRING.get() {
        Some(Ok(keys)) => Ok(keys),
        Some(Err(reason)) => Err(VaultError::NoMasterKey { reason: sentence(reason) }),
        None => Err(VaultError::NotPreloaded),
    }
}

/// Every loaded master key version, oldest first.
pub fn all() -> VaultResult<&'static [MasterKey]> {
    ring()
}

/// The newest master key version: the one that wraps new organization keys.
pub fn newest() -> VaultResult<&'static MasterKey> {
    ring()?.last().ok_or(VaultError::NoMasterKey { reason: "The key source was empty.".into() })
}

/// The master key version with this fingerprint, or the error naming it.
pub fn by_fingerprint(fp_hex: &str) -> VaultResult<&'static MasterKey> {
    let keys = ring()?;
    keys.iter().find(|k| fingerprint_hex(&k.fingerprint) == fp_hex).ok_or_else(|| {
        VaultError::MasterKeyMissing {
            needed: fp_hex.to_owned(),
            loaded: keys.iter().map(|k| fingerprint_hex(&k.fingerprint)).collect(),
        }
    })
}

/// Capitalises a reason into a DETAIL sentence.
fn sentence(reason: &str) -> String {
    let mut chars = reason.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}
