//! `#[pg_test]` suites. Every access check runs as an ordinary role made
//! here (no superuser, no owner, no BYPASSRLS), switched to with SET ROLE.

mod support;
mod vault;
