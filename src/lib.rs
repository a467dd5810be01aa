//! cortex_vault: encrypted, organization-scoped secrets with an audit trail,
//! and row-level isolation helpers, for multi-tenant AI-agent platforms.
//!
//! Data flows one way: SQL surface (`secrets`, `orgs`, `isolation`) →
//! context check (`context`) → keys (`keys`) → crypto (`crypto`) → storage,
//! with the audit trail (`audit`) written beside each step that touches a
//! secret.

use pgrx::prelude::*;

pub mod audit;
pub mod context;
pub mod crypto;
mod elevate;
pub mod errors;
mod isolation;
pub mod keys;
mod orgs;
mod plaintext;
mod plans;
mod redact;
mod sealed;
mod secrets;
pub mod settings;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// Registers the settings and, when preloaded, loads the master key.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // SAFETY: reading a global flag the server sets while it loads
    // shared_preload_libraries.
    let preloading = unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress };
    settings::register(preloading);
    redact::install();
    elevate::register_cache_callback();
    context::bindings::register_cache_callback();
    // Error reports go to clients and the server log; a Rust backtrace in
    // their context would only add noise, so capturing one is switched off.
    if preloading {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    if preloading {
        keys::load_at_start();
        context::load_token_keys_at_start();
    }
}

#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// Hooks for `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    /// One-off set-up when the test framework starts; nothing to do.
    pub fn setup(_options: Vec<&str>) {}

    /// The test server preloads the library with a master key file made by
    /// `scripts/test.sh` (path in CORTEX_VAULT_TEST_KEY_FILE).
    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        let mut options = vec!["shared_preload_libraries = 'cortex_vault'"];
        let files = [
            ("CORTEX_VAULT_TEST_KEY_FILE", "cortex_vault.master_key_file"),
            ("CORTEX_VAULT_TEST_TOKEN_KEY_FILE", "cortex_vault.token_key_file"),
        ];
        for (var, setting) in files {
            if let Ok(path) = std::env::var(var) {
                let line = format!("{setting} = '{path}'");
                options.push(Box::leak(line.into_boxed_str()));
            }
        }
        options
    }
}
