//! Shared set-up for the `#[pg_test]` suites: ordinary roles for each duty,
//! two organizations, and a helper that turns an error into its SQLSTATE
//! and message so one test can check several refusals.

use pgrx::prelude::*;

/// Organization A of every test.
pub const ORG_A: &str = "0a0a0a0a-0000-4000-8000-00000000000a";
/// Organization B of every test.
pub const ORG_B: &str = "0b0b0b0b-0000-4000-8000-00000000000b";

/// Runs one statement; panics with the statement's error.
pub fn run(sql: &str) {
    Spi::run(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The single text value a query returns.
pub fn text(sql: &str) -> Option<String> {
    Spi::get_one::<String>(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Makes the roles and organizations; leaves the session as superuser.
pub fn setup() {
    run("CREATE ROLE t_admin NOLOGIN IN ROLE cortex_vault_admin");
    run("CREATE ROLE t_writer NOLOGIN IN ROLE cortex_vault_writer");
    run("CREATE ROLE t_reader NOLOGIN IN ROLE cortex_vault_reader");
    run("CREATE ROLE t_auditor NOLOGIN IN ROLE cortex_vault_auditor");
    run("CREATE ROLE t_nobody NOLOGIN");
    run("CREATE FUNCTION public.t_error_of(q text) RETURNS text LANGUAGE plpgsql AS $$ \
         DECLARE v text; BEGIN EXECUTE q INTO v; RETURN coalesce(NULLIF(v, ''), 'ok'); \
         EXCEPTION WHEN OTHERS THEN RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM; END $$");
    run("GRANT EXECUTE ON FUNCTION public.t_error_of(text) TO PUBLIC");
    run("CREATE FUNCTION public.t_detail_of(q text) RETURNS text LANGUAGE plpgsql AS $$ \
         DECLARE d text; BEGIN EXECUTE q; RETURN NULL; \
         EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL; \
         RETURN d; END $$");
    as_role("t_admin", None);
    run(&format!("SELECT cortex_vault.create_org('{ORG_A}', 'Acme')"));
    run(&format!("SELECT cortex_vault.create_org('{ORG_B}', 'Globex')"));
    reset_role();
}

/// Switches to `role` with `org` (and no deployment, no token) in context.
pub fn as_role(role: &str, org: Option<&str>) {
    reset_role();
    run(&format!("SET LOCAL ROLE {role}"));
    run("SET LOCAL cortex_vault.context_token = ''");
    context(org, None);
}

/// Sets the organization and deployment in context for this transaction.
pub fn context(org: Option<&str>, deployment: Option<&str>) {
    run(&format!("SELECT set_config('cortex_vault.org_id', '{}', true)", org.unwrap_or("")));
    run(&format!(
        "SELECT set_config('cortex_vault.deployment_id', '{}', true)",
        deployment.unwrap_or("")
    ));
}

/// Back to the superuser that runs the test.
pub fn reset_role() {
    run("RESET ROLE");
}

/// The first value the statement returns ("ok" for NULL or none), or
/// "ERROR SQLSTATE: message" of the error it raises.
pub fn outcome(sql: &str) -> String {
    let quoted = sql.replace('\'', "''");
    text(&format!("SELECT public.t_error_of('{quoted}')")).unwrap_or_default()
}

/// The DETAIL of the error the statement raises; `None` when it succeeds.
pub fn detail_of(sql: &str) -> Option<String> {
    let quoted = sql.replace('\'', "''");
    text(&format!("SELECT public.t_detail_of('{quoted}')"))
}

/// Creates a secret as the writer of `org`; returns its id.
pub fn create(org: &str, name: &str, value: &str, deployment: Option<&str>) -> String {
    as_role("t_writer", Some(org));
    let dep = deployment.map(|d| format!("'{d}'")).unwrap_or_else(|| "NULL".into());
    let id = text(&format!(
        "SELECT cortex_vault.create_secret('{name}', '{value}', {dep}, 'anthropic')::text"
    ));
    reset_role();
    id.expect("create_secret returns an id")
}

/// Reads a secret as the reader of `org` with `deployment` in context.
pub fn read(org: &str, deployment: Option<&str>, id: &str) -> String {
    as_role("t_reader", Some(org));
    context(Some(org), deployment);
    let value = outcome(&format!("SELECT cortex_vault.read_secret('{id}')"));
    reset_role();
    value
}
