//! Who the transaction acts for: organization, deployment and actor, taken
//! from the `cortex_vault.*` settings. An unset, empty or malformed context
//! never fails open: the SQL surface refuses it, policies match no row.

use crate::errors::{VaultError, VaultResult};
use crate::settings;
use pgrx::prelude::*;
use pgrx::Uuid;

/// Longest deployment id or actor accepted, in bytes.
pub const MAX_LABEL_BYTES: usize = 255;

/// The organization and deployment a vault call acts for.
#[derive(Debug, Clone)]
pub struct Context {
    /// Organization from `cortex_vault.org_id`.
    pub org: Uuid,
    /// Deployment from `cortex_vault.deployment_id`; `None` when unset or empty.
    pub deployment: Option<String>,
}

/// The organization in context: `None` when unset or empty, an error when
/// malformed.
pub fn current_org() -> VaultResult<Option<Uuid>> {
    match settings::non_empty(&settings::ORG_ID) {
        None => Ok(None),
        Some(text) => parse_uuid(&text).map(Some).ok_or(VaultError::MalformedContext {
            setting: "cortex_vault.org_id",
            detail: "The value is not a valid uuid.".into(),
        }),
    }
}

/// The deployment in context, `None` when unset or empty.
pub fn current_deployment() -> VaultResult<Option<String>> {
    let value = settings::non_empty(&settings::DEPLOYMENT_ID);
    if let Some(d) = &value {
        if d.len() > MAX_LABEL_BYTES {
            return Err(VaultError::MalformedContext {
                setting: "cortex_vault.deployment_id",
                detail: format!("The value is longer than {MAX_LABEL_BYTES} bytes."),
            });
        }
    }
    Ok(value)
}

/// The full context a vault call needs; refuses a missing organization.
pub fn require() -> VaultResult<Context> {
    let org = current_org()?.ok_or(VaultError::NoContext)?;
    Ok(Context { org, deployment: current_deployment()? })
}

/// The application user for the audit trail, cut to a safe length.
pub fn actor() -> Option<String> {
    settings::non_empty(&settings::ACTOR).map(|a| truncate(a, MAX_LABEL_BYTES))
}

/// Parses a uuid in any form Postgres accepts for the type.
pub fn parse_uuid(text: &str) -> Option<Uuid> {
    uuid::Uuid::try_parse(text.trim()).ok().map(|u| Uuid::from_bytes(*u.as_bytes()))
}

/// Cuts a string to at most `max` bytes on a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The organization in context as uuid; NULL when unset or empty, so that a
/// policy comparing with it matches no row; an error when malformed. Called
/// by row-level security policies as the querying role, so every role may
/// execute it.
#[pgrx::pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn current_org_id() -> Option<Uuid> {
    crate::errors::or_raise(current_org())
}

/// The deployment in context; NULL when unset or empty.
#[pgrx::pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn current_deployment_id() -> Option<String> {
    crate::errors::or_raise(current_deployment())
}
