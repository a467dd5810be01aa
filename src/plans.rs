//! Kept query plans for the hot paths (reads, audit rows, role bindings):
//! parsed and planned once per backend instead of once per call. Every query
//! names its schema and is prepared with `search_path` pinned, so a kept plan
//! cannot resolve to a caller's object; Postgres replans it when a table it
//! uses changes.

use crate::errors::VaultResult;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiTupleTable};
use pgrx::PgOid;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    /// Plans by query text; a handful of constant queries, so it stays small.
    static PLANS: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
}

/// Runs a constant query through its kept plan, preparing it on first use,
/// and hands the rows to `f`.
pub fn run<R>(
    query: &'static str,
    types: &[pg_sys::Oid],
    args: &[DatumWithOid],
    f: impl FnOnce(SpiTupleTable) -> VaultResult<R>,
) -> VaultResult<R> {
    Spi::connect_mut(|client| {
        let cached = PLANS.with(|p| p.borrow().get(query).cloned());
        let plan = match cached {
            Some(plan) => plan,
            None => {
                let oids: Vec<PgOid> = types.iter().map(|t| PgOid::from(*t)).collect();
                let plan = Rc::new(client.prepare_mut(query, &oids)?.keep());
                PLANS.with(|p| p.borrow_mut().insert(query, plan.clone()));
                plan
            }
        };
        let rows = client.update(&*plan, None, args)?;
        f(rows)
    })
}
