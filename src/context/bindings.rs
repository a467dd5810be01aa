//! Role bindings: database roles tied to organizations. A session whose
//! current or session role is bound, directly or through a role it is a
//! member of, may act only for the organizations bound that way, whatever it
//! sets; bound to one organization, it needs no setting at all. The bindings
//! are cached per backend and reloaded after any change to the table.

use crate::elevate::as_vault_owner;
use crate::errors::{or_raise, required, VaultError, VaultResult};
use pgrx::prelude::*;
use pgrx::Uuid;
use std::cell::RefCell;
use std::rc::Rc;

/// Organizations the current role and the session role are bound to: one
/// list per bound role, empty when neither is bound.
pub fn bound_orgs() -> VaultResult<Vec<(String, Vec<Uuid>)>> {
    let all = all_bindings()?;
    if all.is_empty() {
        return Ok(Vec::new());
    }
    // SAFETY: both ids are valid inside a transaction.
    let (current, session) = unsafe { (pg_sys::GetUserId(), pg_sys::GetSessionUserId()) };
    let mut lists: Vec<(String, Vec<Uuid>)> = Vec::new();
    for (role, org) in all.iter() {
        if !applies_to(role, current) && !applies_to(role, session) {
            continue;
        }
        match lists.iter_mut().find(|(r, _)| r == role) {
            Some((_, orgs)) => orgs.push(*org),
            None => lists.push((role.clone(), vec![*org])),
        }
    }
    Ok(lists)
}

/// Whether a binding of `role` applies to `member`: the same role or a role
/// it is a member of. Superuser status does not count as membership.
fn applies_to(role: &str, member: pg_sys::Oid) -> bool {
    let Ok(name) = std::ffi::CString::new(role) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated name; missing_ok = true returns
    // InvalidOid for a dropped role instead of raising.
    let oid = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    // SAFETY: plain catalog lookups on valid oids.
    oid != pg_sys::Oid::INVALID && unsafe { pg_sys::is_member_of_role_nosuper(member, oid) }
}

/// Every binding: (role name, organization).
type Bindings = Rc<Vec<(String, Uuid)>>;

thread_local! {
    /// Every binding, loaded once per backend and dropped by the relcache
    /// callback whenever `role_bindings` (or any relation) is invalidated,
    /// which the trigger on the table does at each change.
    static ALL: RefCell<Option<Bindings>> = const { RefCell::new(None) };
}

/// Registers the callback that drops the cached bindings; from `_PG_init`.
pub fn register_cache_callback() {
    // SAFETY: registers a plain function for the lifetime of the process.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(forget), pg_sys::Datum::from(0)) };
}

unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    // Never borrowed across a call into Postgres, so this cannot fail; if it
    // did, dropping nothing would only delay a reload, so no panic here.
    ALL.with(|a| {
        if let Ok(mut cached) = a.try_borrow_mut() {
            cached.take();
        }
    });
}

fn all_bindings() -> VaultResult<Bindings> {
    if let Some(all) = ALL.with(|a| a.borrow().clone()) {
        return Ok(all);
    }
    let all = Rc::new(as_vault_owner(load_bindings)?);
    ALL.with(|a| *a.borrow_mut() = Some(all.clone()));
    Ok(all)
}

fn load_bindings() -> VaultResult<Vec<(String, Uuid)>> {
    crate::plans::run(
        "SELECT role_name::text, org_id FROM cortex_vault.role_bindings ORDER BY role_name, org_id",
        &[],
        &[],
        |rows| {
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                if let (Some(role), Some(org)) = (row.get::<String>(1)?, row.get::<Uuid>(2)?) {
                    out.push((role, org));
                }
            }
            Ok(out)
        },
    )
}

/// Tells every backend, at commit, that the bindings changed; a statement
/// trigger on `role_bindings`.
#[pg_trigger]
fn _bindings_changed<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgHeapTupleError> {
    if let Ok(relid) = trigger.relid() {
        // SAFETY: queues a relcache invalidation for an existing relation.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    }
    ALL.with(|a| a.borrow_mut().take());
    Ok(None)
}

/// Binds a role to an organization; an administrator's function.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn bind_role(role: Option<&str>, org_id: Option<Uuid>) {
    or_raise(change_binding(role, org_id, true))
}

/// Removes a role's binding to an organization.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn unbind_role(role: Option<&str>, org_id: Option<Uuid>) {
    or_raise(change_binding(role, org_id, false))
}

fn change_binding(role: Option<&str>, org: Option<Uuid>, bind: bool) -> VaultResult<()> {
    let role = required(role, "role")?;
    if bind {
        // Raises "role ... does not exist" for a name that is not a role.
        let name = std::ffi::CString::new(role).map_err(|_| VaultError::NullArgument("role"))?;
        // SAFETY: a valid NUL-terminated name; missing_ok = false raises.
        unsafe { pg_sys::get_role_oid(name.as_ptr(), false) };
    }
    let org = required(org, "org_id")?;
    as_vault_owner(|| {
        let query = if bind {
            "INSERT INTO cortex_vault.role_bindings (org_id, role_name) \
             SELECT $2, $1 WHERE EXISTS (SELECT 1 FROM cortex_vault.orgs WHERE org_id = $2) \
             ON CONFLICT DO NOTHING RETURNING 1"
        } else {
            "DELETE FROM cortex_vault.role_bindings WHERE role_name = $1 AND org_id = $2 RETURNING 1"
        };
        let changed = Spi::connect_mut(|c| -> VaultResult<bool> {
            Ok(!c.update(query, None, &[role.into(), org.into()])?.is_empty())
        })?;
        if bind && !changed && !exists(&org)? {
            return Err(VaultError::UnknownOrg);
        }
        Ok(())
    })
}

fn exists(org: &Uuid) -> VaultResult<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM cortex_vault.orgs WHERE org_id = $1)",
        &[(*org).into()],
    )?
    .unwrap_or(false))
}
