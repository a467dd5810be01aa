//! Whether a setting's current value was set for this transaction only
//! (`SET LOCAL`, `set_config(..., true)`, a function's SET clause) or for the
//! whole session. A session-level value outlives the transaction and, behind
//! a transaction-pooling connection pooler, reaches the next client.

use pgrx::pg_sys;
use std::ffi::CStr;

/// True when the setting's value will be undone at the end of the
/// transaction; false when it was set for the session or never set.
pub fn is_transaction_local(name: &CStr) -> bool {
    let Some(gconf) = find(name) else {
        return false;
    };
    // SAFETY: `find` returns a live entry of the server's GUC table; its
    // stack is a linked list owned by guc.c, valid for the transaction.
    unsafe {
        let stack = (*gconf).stack;
        !stack.is_null() && (*stack).state != pg_sys::GucStackState::GUC_SET
    }
}

/// The server's record of a setting, by exact name.
#[cfg(feature = "pg15")]
fn find(name: &CStr) -> Option<*mut pg_sys::config_generic> {
    // SAFETY: get_guc_variables returns the server's array of
    // GetNumConfigOptions() valid entries, each with a NUL-terminated name.
    unsafe {
        let vars = pg_sys::get_guc_variables();
        let count = pg_sys::GetNumConfigOptions() as usize;
        (0..count).map(|i| *vars.add(i)).find(|v| CStr::from_ptr((**v).name) == name)
    }
}

/// The server's record of a setting, by exact name.
#[cfg(not(feature = "pg15"))]
fn find(name: &CStr) -> Option<*mut pg_sys::config_generic> {
    // SAFETY: find_option with skip_errors = true returns NULL rather than
    // raising when the setting does not exist, and creates no placeholder.
    let found =
        unsafe { pg_sys::find_option(name.as_ptr(), false, true, pgrx::PgLogLevel::ERROR as i32) };
    (!found.is_null()).then_some(found)
}
