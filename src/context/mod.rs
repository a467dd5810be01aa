//! Who the transaction acts for: organization, deployment and actor.
//!
//! The organization comes from, in order of trust: a signed context token
//! (`cortex_vault.context_token`), a role binding, or the plain setting
//! `cortex_vault.org_id`. Role bindings always apply; with
//! `cortex_vault.strict_context` on, the plain setting alone is refused and
//! whatever supplies the context must be transaction-local. An unset, empty,
//! malformed, expired or refused context never fails open: the SQL surface
//! raises, policies match no row or raise.

pub mod bindings;
mod scope;
pub mod token;

use crate::errors::{or_raise, required, VaultError, VaultResult};
use crate::keys::master;
use crate::settings;
use pgrx::prelude::*;
use pgrx::Uuid;
use std::sync::OnceLock;

/// Longest deployment id or actor accepted, in bytes.
pub const MAX_LABEL_BYTES: usize = 255;

/// The signing keys of context tokens, loaded at server start, oldest first.
static TOKEN_KEYS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();

/// The organization and deployment a vault call acts for.
#[derive(Debug, Clone)]
pub struct Context {
    /// Organization the transaction acts for.
    pub org: Uuid,
    /// Deployment; `None` for an organization-wide context.
    pub deployment: Option<String>,
}

/// Loads the token signing keys at server start; logs fingerprints only.
pub fn load_token_keys_at_start() {
    let Some(path) = settings::non_empty(&settings::TOKEN_KEY_FILE) else {
        return;
    };
    match master::read_key_file(&path) {
        Ok(keys) => {
            let newest = keys.last().map(|k| master::fingerprint_hex(&k.fingerprint));
            log!(
                "cortex_vault: loaded {} context token key(s); newest fingerprint {}",
                keys.len(),
                newest.unwrap_or_default()
            );
            let _ = TOKEN_KEYS.set(keys.iter().map(|k| *k.key.as_bytes()).collect());
        }
        Err(e) => warning!(
            "cortex_vault: no context token key loaded: cortex_vault.token_key_file is \
             unusable: {e}; fix the file and restart"
        ),
    }
}

/// The context of this transaction; `None` when no organization is set.
pub fn resolve() -> VaultResult<Option<Context>> {
    let strict = settings::STRICT_CONTEXT.get();
    let plain = plain_settings(strict)?;
    let mut org = plain.org;
    let mut deployment = plain.deployment;
    let mut trusted = false;

    if let Some(token) = settings::non_empty(&settings::CONTEXT_TOKEN) {
        let (signed_org, signed_dep) = verify_token(&token, strict)?;
        if org.as_ref().is_some_and(|o| *o != signed_org) {
            return Err(refused(
                "cortex_vault.org_id names another organization than the context token.",
            ));
        }
        if let (Some(set), Some(signed)) = (&deployment, &signed_dep) {
            if set != signed {
                return Err(refused(
                    "cortex_vault.deployment_id names another deployment than the context token.",
                ));
            }
        }
        org = Some(signed_org);
        deployment = signed_dep.or(deployment);
        trusted = true;
    }

    let bound = bindings::bound_orgs()?;
    if !bound.is_empty() {
        let mut allowed: Vec<Uuid> =
            bound.iter().flat_map(|(_, orgs)| orgs.iter().copied()).collect();
        allowed.sort_by_key(|u| *u.as_bytes());
        allowed.dedup();
        match org {
            Some(o) if !allowed.contains(&o) => {
                let roles: Vec<&str> = bound.iter().map(|(r, _)| r.as_str()).collect();
                return Err(refused(&format!(
                    "The session's roles are bound to other organizations ({}).",
                    roles.join(", ")
                )));
            }
            None if allowed.len() == 1 => org = Some(allowed[0]),
            _ => {}
        }
        trusted = true;
    }

    // A deployment left on the session would otherwise be dropped silently,
    // widening the context to the whole organization.
    if strict && deployment.is_none() && plain.session_level == Some("cortex_vault.deployment_id") {
        return Err(refused_strict("cortex_vault.deployment_id was set for the whole session."));
    }
    if strict && !trusted {
        if let Some(name) = plain.session_level {
            return Err(refused_strict(&format!("{name} was set for the whole session.")));
        }
        if org.is_some() {
            return Err(refused_strict(
                "Strict mode requires a signed context token or a role binding.",
            ));
        }
    }
    Ok(org.map(|org| Context { org, deployment }))
}

/// The plain settings that count: in strict mode only transaction-local
/// values do; a session-level value is ignored, and named so that a context
/// without any trusted source can be refused with the reason.
struct Plain {
    org: Option<Uuid>,
    deployment: Option<String>,
    session_level: Option<&'static str>,
}

fn plain_settings(strict: bool) -> VaultResult<Plain> {
    let mut plain =
        Plain { org: setting_org()?, deployment: setting_deployment()?, session_level: None };
    if strict {
        if plain.org.is_some() && !scope::is_transaction_local(c"cortex_vault.org_id") {
            plain.org = None;
            plain.session_level = Some("cortex_vault.org_id");
        }
        if plain.deployment.is_some() && !scope::is_transaction_local(c"cortex_vault.deployment_id")
        {
            plain.deployment = None;
            plain.session_level = plain.session_level.or(Some("cortex_vault.deployment_id"));
        }
    }
    Ok(plain)
}

fn verify_token(token: &str, strict: bool) -> VaultResult<(Uuid, Option<String>)> {
    if strict && !scope::is_transaction_local(c"cortex_vault.context_token") {
        return Err(refused_strict("cortex_vault.context_token was set for the whole session."));
    }
    let keys = TOKEN_KEYS.get().map(Vec::as_slice).unwrap_or(&[]);
    if keys.is_empty() {
        return Err(VaultError::ContextRefused {
            detail: "No context token key is loaded.".into(),
            hint: "Set cortex_vault.token_key_file in postgresql.conf and restart.",
        });
    }
    let claims = token::verify(keys, token, unix_now()).map_err(|e| refused(e.detail()))?;
    let org =
        parse_uuid(&claims.org).ok_or_else(|| refused(token::TokenError::Malformed.detail()))?;
    Ok((org, claims.dep))
}

fn refused(detail: &str) -> VaultError {
    VaultError::ContextRefused {
        detail: detail.to_owned(),
        hint: "Carry the organization in a valid context token or use a role bound to it.",
    }
}

fn refused_strict(detail: &str) -> VaultError {
    VaultError::ContextRefused {
        detail: detail.to_owned(),
        hint: "Set the context with SET LOCAL or set_config(name, value, true) inside the \
               transaction, from a signed context token or a bound role.",
    }
}

/// Seconds since the Unix epoch by the server's clock.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The organization of the plain setting: `None` when unset or empty.
fn setting_org() -> VaultResult<Option<Uuid>> {
    match settings::non_empty(&settings::ORG_ID) {
        None => Ok(None),
        Some(text) => parse_uuid(&text).map(Some).ok_or(VaultError::MalformedContext {
            setting: "cortex_vault.org_id",
            detail: "The value is not a valid uuid.".into(),
        }),
    }
}

/// The deployment of the plain setting: `None` when unset or empty.
fn setting_deployment() -> VaultResult<Option<String>> {
    let value = settings::non_empty(&settings::DEPLOYMENT_ID);
    if value.as_ref().is_some_and(|d| d.len() > MAX_LABEL_BYTES) {
        return Err(VaultError::MalformedContext {
            setting: "cortex_vault.deployment_id",
            detail: format!("The value is longer than {MAX_LABEL_BYTES} bytes."),
        });
    }
    Ok(value)
}

/// The full context a vault call needs; refuses a missing organization.
pub fn require() -> VaultResult<Context> {
    resolve()?.ok_or(VaultError::NoContext)
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
/// policy comparing with it matches no row; an error when malformed or
/// refused. Called by row-level security policies as the querying role, so
/// every role may execute it.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn current_org_id() -> Option<Uuid> {
    or_raise(resolve()).map(|c| c.org)
}

/// The deployment in context; NULL when unset, empty or organization-wide.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn current_deployment_id() -> Option<String> {
    or_raise(resolve()).and_then(|c| c.deployment)
}

/// Signs a context token with the newest loaded token key; an
/// administrator's function for operations and tests. Applications sign
/// their own tokens with the same key outside the database.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn issue_context_token(
    org_id: Option<Uuid>,
    deployment_id: default!(Option<&str>, "NULL"),
    ttl_seconds: default!(Option<i32>, "300"),
) -> String {
    or_raise(issue(org_id, deployment_id, ttl_seconds))
}

fn issue(org: Option<Uuid>, deployment: Option<&str>, ttl: Option<i32>) -> VaultResult<String> {
    let org = required(org, "org_id")?;
    let ttl = required(ttl, "ttl_seconds")?;
    if !(1..=86_400).contains(&ttl) {
        return Err(VaultError::InvalidArgument {
            message: "argument \"ttl_seconds\" is out of range".into(),
            detail: "A context token lives from 1 second to 1 day.".into(),
        });
    }
    let key = TOKEN_KEYS.get().and_then(|k| k.last()).ok_or(VaultError::ContextRefused {
        detail: "No context token key is loaded.".into(),
        hint: "Set cortex_vault.token_key_file in postgresql.conf and restart.",
    })?;
    let claims = token::Claims {
        org: org.to_string(),
        dep: deployment.map(str::to_owned),
        exp: unix_now() + i64::from(ttl),
    };
    Ok(token::sign(key, &claims))
}
