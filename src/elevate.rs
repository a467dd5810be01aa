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
    caller().unwrap_or_else(current_role_name)
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

/// Restores the caller's user id, security context and settings when dropped.
struct Restore {
    user: pg_sys::Oid,
    context: i32,
    guc_level: Option<i32>,
    previous_caller: Option<String>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: restores exactly the values read by GetUserIdAndSecContext.
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
        // While an error unwinds, the (sub)transaction abort that follows pops
        // the setting level; calling into guc.c mid-error is not safe.
        if let Some(level) = self.guc_level.filter(|_| !std::thread::panicking()) {
            // SAFETY: pops the level pushed in `as_vault_owner`, undoing the
            // search_path set there; nothing inside left a deeper level open.
            unsafe { pg_sys::AtEOXact_GUC(true, level) };
        }
        let previous = self.previous_caller.take();
        CALLER.with(|c| *c.borrow_mut() = previous);
    }
}

/// Runs `f` with the owner of the `cortex_vault` schema as current user.
pub fn as_vault_owner<R>(f: impl FnOnce() -> VaultResult<R>) -> VaultResult<R> {
    let caller = current_role_name();

    let mut user = pg_sys::Oid::INVALID;
    let mut context = 0i32;
    // SAFETY: both out-pointers are valid locals.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    // A nested call (a trigger fired by a vault query) keeps the outer caller.
    let outer = CALLER.with(|c| c.borrow().clone());
    let caller = outer.clone().unwrap_or(caller);
    // The SQL functions pin search_path in their definition; a trigger or a
    // nested call may not, and then it is pinned here, in a setting level
    // that `Restore` or the (sub)transaction abort closes.
    let guc_level = (!search_path_is_pinned()).then(|| {
        // SAFETY: opens a setting level; set_config_option saves into it.
        let level = unsafe { pg_sys::NewGUCNestLevel() };
        pin_search_path();
        level
    });
    let _restore = Restore { user, context, guc_level, previous_caller: outer };
    CALLER.with(|c| *c.borrow_mut() = Some(caller));
    // The owner is looked up with search_path already pinned.
    let owner = vault_owner()?;

    let flags =
        (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as i32;
    // SAFETY: the owner oid comes from pg_namespace; `_restore` undoes the
    // change on every path out of this function, and transaction abort
    // resets it as well.
    unsafe { pg_sys::SetUserIdAndSecContext(owner, context | flags) };
    f()
}

/// The search_path every storage query runs with.
const PINNED_PATH: &CStr = c"pg_catalog, pg_temp";

/// Whether search_path is already exactly [`PINNED_PATH`].
fn search_path_is_pinned() -> bool {
    // SAFETY: GetConfigOption returns NULL or a string owned by guc.c that
    // stays valid until the setting changes, which cannot happen here.
    let current = unsafe { pg_sys::GetConfigOption(c"search_path".as_ptr(), false, false) };
    !current.is_null() && unsafe { CStr::from_ptr(current) } == PINNED_PATH
}

/// Sets search_path to pg_catalog, pg_temp for the storage queries, so that
/// no object of the caller's can stand in for a built-in one.
fn pin_search_path() {
    // SAFETY: valid NUL-terminated strings; GUC_ACTION_SAVE ties the value to
    // the level opened by the caller of this function.
    unsafe {
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            PINNED_PATH.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
    }
}

thread_local! {
    /// The schema owner found by the last lookup; cleared by the syscache
    /// callback whenever any schema changes (owner change, drop, rename).
    static OWNER: std::cell::Cell<Option<pg_sys::Oid>> = const { std::cell::Cell::new(None) };
}

/// Registers the callback that forgets the cached owner; from `_PG_init`.
pub fn register_cache_callback() {
    // SAFETY: registers a plain function for the lifetime of the process.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as i32,
            Some(forget_owner),
            pg_sys::Datum::from(0),
        );
    }
}

unsafe extern "C-unwind" fn forget_owner(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    OWNER.with(|o| o.set(None));
}

/// Owner of the extension's schema, looked up once per backend and again
/// after any schema changes.
fn vault_owner() -> VaultResult<pg_sys::Oid> {
    if let Some(owner) = OWNER.with(|o| o.get()) {
        return Ok(owner);
    }
    let owner = Spi::get_one::<pg_sys::Oid>(
        "SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'cortex_vault'",
    )
    .ok()
    .flatten()
    .ok_or_else(|| VaultError::Internal("the cortex_vault schema was not found".into()))?;
    OWNER.with(|o| o.set(Some(owner)));
    Ok(owner)
}
