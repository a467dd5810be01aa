//! Row-level security helpers for application tables. The helpers are
//! plpgsql in `sql/isolation.sql`; this module holds the audit trigger they
//! attach and the audit record of an export.

use crate::audit::{self, Event};
use crate::context;
use crate::elevate::as_vault_owner;
use crate::errors::{or_raise, VaultError, VaultResult};
use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, Uuid};

extension_sql_file!("../sql/isolation.sql", name = "isolation", requires = ["schema"]);

/// Organization id recorded when an audited row carries none: the nil uuid.
const NO_ORG: [u8; 16] = [0; 16];

/// Writes one audit row per inserted, updated or deleted row of an audited
/// application table. It runs as the role that changed the row, which is the
/// role the audit row names; as a trigger function it cannot be called
/// directly, so that name cannot be forged.
#[pg_trigger]
fn _audit_row_change<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgHeapTupleError> {
    or_raise(audit_row(trigger));
    Ok(None)
}

fn audit_row(trigger: &PgTrigger) -> VaultResult<()> {
    let bad = |what: &str| VaultError::Report {
        code: PgSqlErrorCode::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
        message: format!("cortex_vault audit trigger {what}"),
        detail: None,
    };
    let column = trigger.extra_args().ok().and_then(|a| a.into_iter().next());
    let column = column.ok_or_else(|| bad("needs the organization column as argument"))?;
    let op = match trigger.op().map_err(|_| bad("fired for an unknown event"))? {
        PgTriggerOperation::Insert => "insert",
        PgTriggerOperation::Update => "update",
        PgTriggerOperation::Delete => "delete",
        PgTriggerOperation::Truncate => "truncate",
    };
    let row = if op == "delete" { trigger.old() } else { trigger.new() };
    let org = match row {
        Some(tuple) => tuple
            .get_by_name::<Uuid>(&column)
            .map_err(|_| bad("cannot read the organization column"))?,
        None => None,
    };
    let table = format!(
        "{}.{}",
        trigger.table_schema().unwrap_or_default(),
        trigger.table_name().unwrap_or_default()
    );
    let deployment = context::resolve().ok().flatten().and_then(|c| c.deployment);
    as_vault_owner(|| {
        audit::record_table(
            &org.unwrap_or(Uuid::from_bytes(NO_ORG)),
            deployment.as_deref(),
            &table,
            op,
        )
    })
}

/// Records an export of the organization in context; called by
/// `export_org_data()`.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn _record_export() {
    or_raise(record_export())
}

fn record_export() -> VaultResult<()> {
    let ctx = context::require()?;
    as_vault_owner(|| {
        let event = Event { org: &ctx.org, deployment: None, secret: None, operation: "export" };
        audit::record(&event)
    })
}
