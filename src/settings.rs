//! Every `cortex_vault.*` setting in one place.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::{CStr, CString};

/// File holding the master key versions; read once at server start.
pub static MASTER_KEY_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Command printing the master key versions; read once at server start.
pub static MASTER_KEY_COMMAND: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);

/// Organization the transaction acts for, a uuid as text.
pub static ORG_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Agent deployment the transaction acts for.
pub static DEPLOYMENT_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Application user named in the audit trail.
pub static ACTOR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Signed context token carrying organization, deployment and expiry.
pub static CONTEXT_TOKEN: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// File holding the key that signs context tokens; read once at server start.
pub static TOKEN_KEY_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// When on, a bare `cortex_vault.org_id` is not enough: context must come
/// from a signed token or a role binding, and must be transaction-local.
pub static STRICT_CONTEXT: GucSetting<bool> = GucSetting::<bool>::new(false);

/// When on, every successful read is also written to the server log, where
/// a rollback cannot take it back.
pub static LOG_READS: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Registers the settings; called from `_PG_init`. The server-start
/// settings exist only when the library is preloaded: Postgres refuses to
/// create them in a backend that loads the library later.
pub fn register(preloading: bool) {
    if preloading {
        register_server_start();
    }
    register_session();
}

fn register_server_start() {
    let server_only = GucFlags::SUPERUSER_ONLY;
    string(
        c"cortex_vault.master_key_file",
        c"File with the master key versions, one 64-hex-digit key per line, oldest first.",
        &MASTER_KEY_FILE,
        GucContext::Postmaster,
        server_only,
    );
    string(
        c"cortex_vault.master_key_command",
        c"Command that prints the master key versions in the key file format.",
        &MASTER_KEY_COMMAND,
        GucContext::Postmaster,
        server_only,
    );
    string(
        c"cortex_vault.token_key_file",
        c"File with the 64-hex-digit key that signs context tokens.",
        &TOKEN_KEY_FILE,
        GucContext::Postmaster,
        server_only,
    );
}

fn register_session() {
    GucRegistry::define_bool_guc(
        c"cortex_vault.log_reads",
        c"Write every successful read to the server log as well as to audit_log.",
        c"",
        &LOG_READS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"cortex_vault.strict_context",
        c"Require a signed or role-bound, transaction-local organization context.",
        c"",
        &STRICT_CONTEXT,
        GucContext::Suset,
        GucFlags::default(),
    );
    let context = GucFlags::default();
    string(
        c"cortex_vault.org_id",
        c"Organization (uuid) the transaction acts for.",
        &ORG_ID,
        GucContext::Userset,
        context,
    );
    string(
        c"cortex_vault.deployment_id",
        c"Agent deployment the transaction acts for.",
        &DEPLOYMENT_ID,
        GucContext::Userset,
        context,
    );
    string(
        c"cortex_vault.actor",
        c"Application user recorded in the audit trail.",
        &ACTOR,
        GucContext::Userset,
        context,
    );
    // Anyone may set a token; only superusers may read one back, so a token
    // left on a pooled connection cannot be copied by the next client.
    string(
        c"cortex_vault.context_token",
        c"Signed context token for this transaction.",
        &CONTEXT_TOKEN,
        GucContext::Userset,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
}

fn string(
    name: &'static CStr,
    short: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
    context: GucContext,
    flags: GucFlags,
) {
    GucRegistry::define_string_guc(name, short, c"", setting, context, flags);
}

/// The value of a string setting, `None` when unset or empty.
pub fn non_empty(setting: &GucSetting<Option<CString>>) -> Option<String> {
    let value = setting.get()?;
    let text = value.to_str().ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
