//! Role bindings: database roles tied to organizations. A session whose
//! current or session role is bound, directly or through a role it is a
//! member of, may act only for the organizations bound that way, whatever it
//! sets; bound to one organization, it needs no setting at all.

use crate::elevate::as_vault_owner;
use crate::errors::{or_raise, required, VaultError, VaultResult};
use pgrx::prelude::*;
use pgrx::Uuid;

/// Organizations the current role and the session role are bound to: one
/// list per bound role, empty when neither is bound.
pub fn bound_orgs() -> VaultResult<Vec<(String, Vec<Uuid>)>> {
    // SAFETY: both ids are valid inside a transaction.
    let (current, session) = unsafe { (pg_sys::GetUserId(), pg_sys::GetSessionUserId()) };
    let roles = [role_name(current), role_name(session)];
    let rows = as_vault_owner(|| bindings_of(&roles))?;
    let mut lists: Vec<(String, Vec<Uuid>)> = Vec::new();
    for (role, org) in rows {
        match lists.iter_mut().find(|(r, _)| *r == role) {
            Some((_, orgs)) => orgs.push(org),
            None => lists.push((role, vec![org])),
        }
    }
    Ok(lists)
}

fn role_name(oid: pg_sys::Oid) -> String {
    // SAFETY: with noerr = false a missing role raises instead of returning NULL.
    unsafe { std::ffi::CStr::from_ptr(pg_sys::GetUserNameFromId(oid, false)) }
        .to_string_lossy()
        .into_owned()
}

/// (role, organization) pairs bound to either role or to any role either
/// is a member of, in one query.
fn bindings_of(roles: &[String; 2]) -> VaultResult<Vec<(String, Uuid)>> {
    crate::plans::run(
        "SELECT b.role_name::text, b.org_id FROM cortex_vault.role_bindings b \
         JOIN pg_catalog.pg_roles r ON r.rolname = b.role_name \
         WHERE pg_catalog.pg_has_role($1::name, r.oid, 'MEMBER') \
            OR pg_catalog.pg_has_role($2::name, r.oid, 'MEMBER') \
         ORDER BY b.role_name, b.org_id",
        &[pg_sys::TEXTOID, pg_sys::TEXTOID],
        &[roles[0].as_str().into(), roles[1].as_str().into()],
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
