//! The audit trail. Successful steps are rows of `cortex_vault.audit_log`,
//! written in the caller's transaction (by the trigger on the vault's tables
//! or directly for reads). A refused step aborts that transaction and would
//! take its row with it, so refusals are written to the server log instead,
//! as one LOG line in the same shape. Neither ever holds a value.

use crate::context;
use crate::elevate;
use crate::errors::VaultResult;
use pgrx::prelude::*;
use pgrx::Uuid;

/// One event of the audit trail.
pub struct Event<'a> {
    /// Organization the event belongs to.
    pub org: &'a Uuid,
    /// Deployment in context, or of the secret.
    pub deployment: Option<&'a str>,
    /// Secret concerned, if any.
    pub secret: Option<&'a Uuid>,
    /// What was done: create, read, rotate, delete, create_org, ...
    pub operation: &'a str,
}

/// Appends a successful event to `audit_log`; call inside `as_vault_owner`.
/// A read is also written to the server log (with `cortex_vault.log_reads`
/// on), since the caller could roll its audit row back after seeing the value.
pub fn record(event: &Event) -> VaultResult<()> {
    if event.operation == "read" && crate::settings::LOG_READS.get() {
        log_line(Some(event.org), event.deployment, event.secret, "read", "success");
    }
    use pg_sys::{TEXTOID, UUIDOID};
    crate::plans::run(
        "INSERT INTO cortex_vault.audit_log \
         (org_id, deployment_id, secret_id, operation, outcome, db_user, actor) \
         VALUES ($1, $2, $3, $4, 'success', $5, $6)",
        &[UUIDOID, TEXTOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID],
        &[
            (*event.org).into(),
            event.deployment.into(),
            event.secret.copied().into(),
            event.operation.into(),
            elevate::audit_user().into(),
            context::actor().into(),
        ],
        |_| Ok(()),
    )
}

/// Appends a change to an audited application table; call inside
/// `as_vault_owner`.
pub fn record_table(
    org: &Uuid,
    deployment: Option<&str>,
    table: &str,
    op: &str,
) -> VaultResult<()> {
    Spi::run_with_args(
        "INSERT INTO cortex_vault.audit_log \
         (org_id, deployment_id, table_name, operation, outcome, db_user, actor) \
         VALUES ($1, $2, $3, $4, 'success', $5, $6)",
        &[
            (*org).into(),
            deployment.into(),
            table.into(),
            op.into(),
            elevate::audit_user().into(),
            context::actor().into(),
        ],
    )?;
    Ok(())
}

/// Writes a refused attempt to the server log, where it survives the
/// rollback that the error causes. Labels are quoted so that an actor or
/// deployment name cannot forge a second log line.
pub fn denied(org: Option<&Uuid>, deployment: Option<&str>, secret: Option<&Uuid>, op: &str) {
    log_line(org, deployment, secret, op, "denied");
}

fn log_line(
    org: Option<&Uuid>,
    deployment: Option<&str>,
    secret: Option<&Uuid>,
    op: &str,
    outcome: &str,
) {
    let org = org.map(|o| o.to_string()).unwrap_or_else(|| "none".into());
    let secret = secret.map(|s| s.to_string()).unwrap_or_else(|| "none".into());
    log!(
        "cortex_vault audit: operation={op} outcome={outcome} org={org} deployment={:?} \
         secret={secret} db_user={:?} actor={:?}",
        deployment.unwrap_or(""),
        elevate::audit_user(),
        context::actor().unwrap_or_default()
    );
}

/// The role that called the vault function now running, for the audit
/// trigger on the vault's tables; NULL outside such a call.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn _audit_caller() -> Option<String> {
    elevate::caller()
}
