//! `#[pg_test]` suites. Every access check runs as an ordinary role made
//! here (no superuser, no owner, no BYPASSRLS), switched to with SET ROLE.

mod context;
mod isolation;
mod support;
mod vault;
