//! Storage access as the vault's owner.
//!
//! The SQL surface runs as the caller, so that EXECUTE grants decide who holds
//! which duty and the audit trail names the real role. Only the storage steps
//! switch to the owner of the `cortex_vault` schema, the way Postgres itself
//! runs foreign-key checks: a local user id change inside a restricted
//! operation, undone when the closure returns, errors or panics. The functions
//! that do this pin `search_path` to `pg_catalog, pg_temp`, and every query
//! they run names its schema.

use crate::errors::{VaultError, VaultResult};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::CStr;

thread_local! {
    /// The role that called the vault function now running, for the audit
    /// trigger on the vault's tables; `None` outside such a call.
    static CALLER: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The role a vault call acts as, for the audit trail: the caller while a
/// call is switched to the owner, the current role otherwise.
pub fn audit_user() -> String {
    CALLER.with(|c| c.borrow().clone()).unwrap_or_else(current_role_name)
}

/// The caller of the vault function now running; `None` outside one.
pub fn caller() -> Option<String> {
    CALLER.with(|c| c.borrow().clone())
}

/// Name of the current role.
pub fn current_role_name() -> String {
    // SAFETY: GetUserId is valid inside a transaction, and GetUserNameFromId
    // with noerr = false raises a Postgres error rather than returning NULL.
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetUserId(), false);
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

/// Restores the caller's user id and security context when dropped.
struct Restore {
    user: pg_sys::Oid,
    context: i32,
}

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: restores exactly the values read by GetUserIdAndSecContext.
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
        CALLER.with(|c| c.borrow_mut().take());
    }
}

/// Runs `f` with the owner of the `cortex_vault` schema as current user.
pub fn as_vault_owner<R>(f: impl FnOnce() -> VaultResult<R>) -> VaultResult<R> {
    let owner = vault_owner()?;
    let caller = current_role_name();

    let mut user = pg_sys::Oid::INVALID;
    let mut context = 0i32;
    // SAFETY: both out-pointers are valid locals.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    let _restore = Restore { user, context };
    CALLER.with(|c| *c.borrow_mut() = Some(caller));

    let flags =
        (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as i32;
    // SAFETY: the owner oid comes from pg_namespace; `_restore` undoes the
    // change on every path out of this function, and transaction abort
    // resets it as well.
    unsafe { pg_sys::SetUserIdAndSecContext(owner, context | flags) };
    f()
}

/// Owner of the extension's schema.
fn vault_owner() -> VaultResult<pg_sys::Oid> {
    let owner = Spi::get_one::<pg_sys::Oid>(
        "SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'cortex_vault'",
    )
    .ok()
    .flatten();
    owner.ok_or_else(|| VaultError::Internal("the cortex_vault schema was not found".into()))
}
