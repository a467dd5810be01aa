//! Log redaction. With the library preloaded, every message the server is
//! about to emit passes through `emit_log_hook`. A statement is sensitive
//! when its text names a function that takes or returns a secret value or the
//! context token setting, when it executes a prepared statement that does,
//! or when such a function ran during it. For a sensitive statement every
//! string literal in the message, DETAIL, CONTEXT and internal query is
//! replaced with `'***'`, and the STATEMENT line is replaced by a redacted
//! copy: the shape of the statement stays readable, the value does not. An
//! error that is not the vault's own (a failed cast of the value, say) may
//! quote the value anywhere, so its DETAIL and CONTEXT are dropped as well.
//!
//! This covers `log_statement`, `log_min_duration_statement`, bind parameter
//! DETAIL lines, error STATEMENT lines, auto_explain and pgaudit, all of
//! which emit through the same hook.

use pgrx::pg_sys;
use std::borrow::Cow;
use std::ffi::{CStr, CString};

/// Names that make a statement sensitive: functions whose arguments or
/// results are secret values (`create_secret` also matches
/// `create_secret_sealed`, `read_secret` matches `read_secret_by_name`), and
/// the setting that carries a bearer token.
const SENSITIVE_NAMES: [&str; 4] =
    ["create_secret", "rotate_secret", "read_secret", "context_token"];

/// What replaces DETAIL of an error that is not the vault's own.
const DROPPED: &str = "(detail redacted by cortex_vault)";

/// Prefix of the vault's own audit lines, whose labels are already quoted.
const AUDIT_PREFIX: &str = "cortex_vault audit: ";

thread_local! {
    /// Text of the statement during which a value function ran, so that its
    /// later messages are redacted even when the text names no function.
    static CARRIER: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// What replaces the contents of every string literal.
const MASK: &str = "***";

/// Whether text names a sensitive function or setting. A Unicode-escaped
/// identifier (`U&"..."`) could spell any name, so it counts as well.
pub fn mentions_value_function(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    SENSITIVE_NAMES.iter().any(|f| lower.contains(f)) || lower.contains("u&\"")
}

/// Marks the current statement as carrying a value; called when a value
/// function starts.
pub fn mark_statement() {
    // SAFETY: debug_query_string is NULL or valid for the current statement.
    let stmt = unsafe { text_of(pg_sys::debug_query_string) };
    CARRIER.with(|c| *c.borrow_mut() = stmt);
}

/// Replaces the contents of double-quoted strings too: error messages quote
/// input values that way.
pub fn redact_quoted(text: &str) -> String {
    let single = redact_literals(text);
    let mut out = String::with_capacity(single.len());
    let mut inside = false;
    for ch in single.chars() {
        if ch == '"' {
            out.push('"');
            if !inside {
                out.push_str(MASK);
            }
            inside = !inside;
        } else if !inside {
            out.push(ch);
        }
    }
    if inside {
        out.push('"');
    }
    out
}

/// For `EXECUTE name(...)`, the text of the prepared statement it runs.
fn prepared_text(stmt: &str) -> Option<String> {
    let rest = stmt.trim_start();
    let head = rest.get(..8)?;
    if !head.eq_ignore_ascii_case("execute ") {
        return None;
    }
    let name: String = rest[8..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_lowercase();
    let cname = CString::new(name).ok()?;
    // SAFETY: with throwError = false the lookup returns NULL for an unknown
    // name; a found entry's plan source and query string live in the
    // session's prepared statement table.
    unsafe {
        let prepared = pg_sys::FetchPreparedStatement(cname.as_ptr(), false);
        if prepared.is_null() || (*prepared).plansource.is_null() {
            return None;
        }
        text_of((*(*prepared).plansource).query_string)
    }
}

/// Whether the statement now running is sensitive.
fn statement_is_sensitive(stmt: &str) -> bool {
    mentions_value_function(stmt)
        || CARRIER.with(|c| c.borrow().as_deref() == Some(stmt))
        || prepared_text(stmt).as_deref().is_some_and(mentions_value_function)
}

/// Replaces the contents of every SQL string literal: '...', E'...' with
/// backslash escapes, and $tag$...$tag$. Comments stay as they are. Double
/// quotes are not treated as identifiers, because log lines such as
/// pgaudit's quote whole statements with them: a quoted identifier holding
/// an apostrophe is masked too far, never too little.
pub fn redact_literals(text: &str) -> Cow<'_, str> {
    if !text.contains('\'') && !text.contains('$') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                let escapes = i > 0 && matches!(bytes[i - 1], b'E' | b'e');
                i = skip_quoted(bytes, i + 1, escapes);
                out.push('\'');
                out.push_str(MASK);
                out.push('\'');
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                let end = text[i..].find('\n').map_or(bytes.len(), |p| i + p);
                out.push_str(&text[i..end]);
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..].find("*/").map_or(bytes.len(), |p| i + 2 + p + 2);
                out.push_str(&text[i..end]);
                i = end;
            }
            b'$' => match dollar_tag(bytes, i) {
                Some(tag_end) => {
                    let tag = &text[i..tag_end];
                    let close =
                        text[tag_end..].find(tag).map_or(bytes.len(), |p| tag_end + p + tag.len());
                    out.push_str(tag);
                    out.push_str(MASK);
                    out.push_str(tag);
                    i = close;
                }
                None => {
                    out.push('$');
                    i += 1;
                }
            },
            _ => {
                let next = text[i..].char_indices().nth(1).map_or(text.len(), |(n, _)| i + n);
                out.push_str(&text[i..next]);
                i = next;
            }
        }
    }
    Cow::Owned(out)
}

/// pgaudit writes a statement's bind parameters unquoted into the last CSV
/// field of its `AUDIT:` line; that field is replaced as a whole.
pub fn redact_audit_parameters(message: &str) -> Cow<'_, str> {
    let Some(body) = message.strip_prefix("AUDIT: ") else {
        return Cow::Borrowed(message);
    };
    let start = last_csv_field(body.as_bytes());
    let last = &body[start..];
    if last == "<none>" || last == "<not logged>" {
        return Cow::Borrowed(message);
    }
    Cow::Owned(format!("AUDIT: {}<redacted>", &body[..start]))
}

/// Byte offset where the last field of a CSV line starts.
fn last_csv_field(bytes: &[u8]) -> usize {
    let (mut start, mut i, mut quoted) = (0, 0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'"' if quoted && bytes.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => quoted = !quoted,
            b',' if !quoted => start = i + 1,
            _ => {}
        }
        i += 1;
    }
    start
}

/// The index after the closing quote of a literal starting at `i`.
fn skip_quoted(bytes: &[u8], mut i: usize, escapes: bool) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The end of a dollar-quote tag (`$$` or `$name$`) starting at `i`; `None`
/// for a positional parameter such as `$1`.
fn dollar_tag(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if bytes.get(j).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
        j += 1;
    }
    (bytes.get(j) == Some(&b'$')).then_some(j + 1)
}

/// The hook that was installed before ours; called after we redact.
static mut PREVIOUS_HOOK: pg_sys::emit_log_hook_type = None;

/// Installs the redaction hook; called from `_PG_init`.
pub fn install() {
    // SAFETY: _PG_init runs once per process, before any message is emitted
    // through the hook; the previous hook is kept and chained.
    unsafe {
        PREVIOUS_HOOK = pg_sys::emit_log_hook;
        pg_sys::emit_log_hook = Some(redact_hook);
    }
}

/// Redacts, then chains. It must never raise: a failure inside is caught
/// and the message is emitted with its statement hidden.
unsafe extern "C-unwind" fn redact_hook(edata: *mut pg_sys::ErrorData) {
    if !edata.is_null() {
        // SAFETY: the server passes a valid ErrorData owned by ErrorContext.
        let ok = std::panic::catch_unwind(|| unsafe { redact(&mut *edata) }).is_ok();
        if !ok {
            // SAFETY: as above.
            unsafe { (*edata).hide_stmt = true };
        }
    }
    // SAFETY: calling the hook that was installed before ours, unchanged.
    unsafe {
        if let Some(previous) = PREVIOUS_HOOK {
            previous(edata);
        }
    }
}

/// # Safety
/// `edata` must be the server's ErrorData being emitted.
unsafe fn redact(edata: &mut pg_sys::ErrorData) {
    // SAFETY: debug_query_string is NULL or a NUL-terminated string that
    // lives for the current statement; the fields are NULL or strings in
    // ErrorContext.
    let statement = unsafe { text_of(pg_sys::debug_query_string) };
    let fields =
        [edata.message, edata.detail, edata.detail_log, edata.context, edata.internalquery];
    let sensitive = statement.as_deref().is_some_and(statement_is_sensitive)
        || fields
            .iter()
            .any(|f| unsafe { text_of(*f) }.as_deref().is_some_and(mentions_value_function));
    if !sensitive {
        return;
    }
    let message = unsafe { text_of(edata.message) }.unwrap_or_default();
    let audit_line = message.starts_with(AUDIT_PREFIX);
    let ours = audit_line || unsafe { text_of(edata.funcname) }.as_deref() == Some("cortex_vault");

    // SAFETY: every replacement is a copy allocated in ErrorContext, where
    // the server frees error data.
    unsafe {
        if !audit_line {
            edata.message = audit_parameters_copy(edata.message);
            edata.message = if ours {
                redacted_copy(edata.message)
            } else {
                copy_to_error_context(&redact_quoted(&text_of(edata.message).unwrap_or_default()))
            };
        }
        if ours {
            edata.detail = redacted_copy(edata.detail);
            edata.detail_log = redacted_copy(edata.detail_log);
            edata.context = redacted_copy(edata.context);
        } else {
            edata.detail = replaced(edata.detail);
            edata.detail_log = replaced(edata.detail_log);
            edata.context = std::ptr::null_mut();
        }
        edata.internalquery = redacted_copy(edata.internalquery);
    }
    if let Some(stmt) = statement.filter(|_| !edata.hide_stmt) {
        edata.hide_stmt = true;
        let line = format!("redacted statement: {}", redact_literals(&stmt));
        // SAFETY: as above.
        let joined = match unsafe { text_of(edata.context) } {
            Some(c) => format!("{c}\n{line}"),
            None => line,
        };
        edata.context = unsafe { copy_to_error_context(&joined) };
    }
}

/// # Safety
/// Must run inside error reporting; `ptr` NULL or a valid string.
unsafe fn replaced(ptr: *mut std::ffi::c_char) -> *mut std::ffi::c_char {
    if ptr.is_null() {
        ptr
    } else {
        unsafe { copy_to_error_context(DROPPED) }
    }
}

/// # Safety
/// `ptr` must be NULL or a valid NUL-terminated string.
unsafe fn text_of(ptr: *const std::ffi::c_char) -> Option<String> {
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

/// # Safety
/// `ptr` must be NULL or a valid NUL-terminated string.
unsafe fn redacted_copy(ptr: *mut std::ffi::c_char) -> *mut std::ffi::c_char {
    unsafe { rewritten(ptr, redact_literals) }
}

/// # Safety
/// `ptr` must be NULL or a valid NUL-terminated string.
unsafe fn audit_parameters_copy(ptr: *mut std::ffi::c_char) -> *mut std::ffi::c_char {
    unsafe { rewritten(ptr, redact_audit_parameters) }
}

/// The field rewritten by `rewrite`, copied into ErrorContext only when it
/// changed.
///
/// # Safety
/// `ptr` must be NULL or a valid NUL-terminated string.
unsafe fn rewritten(
    ptr: *mut std::ffi::c_char,
    rewrite: fn(&str) -> Cow<'_, str>,
) -> *mut std::ffi::c_char {
    match unsafe { text_of(ptr) } {
        Some(text) => match rewrite(&text) {
            Cow::Borrowed(_) => ptr,
            Cow::Owned(new) => unsafe { copy_to_error_context(&new) },
        },
        None => ptr,
    }
}

/// # Safety
/// Must run while ErrorContext exists, that is inside error reporting.
unsafe fn copy_to_error_context(text: &str) -> *mut std::ffi::c_char {
    let c = CString::new(text.replace('\0', "")).unwrap_or_default();
    // SAFETY: MemoryContextStrdup copies the string into ErrorContext.
    unsafe { pg_sys::MemoryContextStrdup(pg_sys::ErrorContext, c.as_ptr()) }
}

/// Replaces this backend's query text in `pg_stat_activity` with a redacted
/// copy, so other sessions do not see a value while the call runs. Called
/// when a value-taking function starts; the text a session can see before
/// that moment is the statement as sent.
pub fn mask_activity() {
    mark_statement();
    // SAFETY: debug_query_string is NULL or valid for the current statement.
    let Some(stmt) = (unsafe { text_of(pg_sys::debug_query_string) }) else {
        return;
    };
    if let Cow::Owned(masked) = redact_literals(&stmt) {
        if let Ok(c) = CString::new(masked.replace('\0', "")) {
            // SAFETY: the server copies the string into its own status area.
            unsafe {
                pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, c.as_ptr())
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_masked_and_the_shape_stays() {
        let sql = "SELECT cortex_vault.create_secret('openai', 'sk-proj-abc', 'agent-a')";
        assert_eq!(redact_literals(sql), "SELECT cortex_vault.create_secret('***', '***', '***')");
    }

    #[test]
    fn every_quoting_form_is_masked() {
        let cases = [
            ("x('it''s sk-1')", "x('***')"),
            (r"x(E'sk-\'2')", r"x(E'***')"),
            ("x($$sk-3$$)", "x($$***$$)"),
            ("x($k$sk-4$ $k$)", "x($k$***$k$)"),
            ("x(U&'sk-5')", "x(U&'***')"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_literals(input), expected, "{input}");
            assert!(!redact_literals(input).contains("sk-"), "{input}");
        }
    }

    #[test]
    fn parameters_and_identifiers_stay() {
        let detail = "Parameters: $1 = 'openai', $2 = 'sk-ant-api03-xyz'";
        assert_eq!(redact_literals(detail), "Parameters: $1 = '***', $2 = '***'");
        let sql = "SELECT \"create_secret\"($1, $2)";
        assert_eq!(redact_literals(sql), sql);
    }

    #[test]
    fn statements_quoted_as_csv_fields_are_masked() {
        let audit =
            "AUDIT: SESSION,1,1,FUNCTION,EXECUTE,,\"SELECT create_secret('n', 'sk-9')\",<none>";
        assert_eq!(
            redact_literals(audit),
            "AUDIT: SESSION,1,1,FUNCTION,EXECUTE,,\"SELECT create_secret('***', '***')\",<none>"
        );
    }

    #[test]
    fn pgaudit_parameter_field_is_replaced() {
        let line = "AUDIT: SESSION,2,1,FUNCTION,EXECUTE,FUNCTION,cortex_vault.create_secret,\
                    \"SELECT cortex_vault.create_secret($1, $2)\",\"bind,sk-ant-api03-x\"";
        let out = redact_audit_parameters(line);
        assert!(out.ends_with(",<redacted>"), "{out}");
        assert!(!out.contains("sk-ant") && out.contains("create_secret($1, $2)"), "{out}");
        let none = "AUDIT: SESSION,1,1,READ,SELECT,,,\"SELECT 1\",<none>";
        assert_eq!(redact_audit_parameters(none), none);
        assert_eq!(redact_audit_parameters("statement: x"), "statement: x");
    }

    #[test]
    fn comments_stay_and_do_not_confuse_quoting() {
        let sql = "-- the vault's key\nSELECT f('sk-1') /* it's */, 'sk-2'";
        assert_eq!(redact_literals(sql), "-- the vault's key\nSELECT f('***') /* it's */, '***'");
    }

    #[test]
    fn an_unterminated_literal_is_masked_to_the_end() {
        assert_eq!(redact_literals("x('sk-unterminated"), "x('***'");
    }

    #[test]
    fn detection_is_case_insensitive_and_covers_variants() {
        assert!(mentions_value_function("select CORTEX_VAULT.Create_Secret($1,$2)"));
        assert!(mentions_value_function("SELECT rotate_secret_sealed($1, $2)"));
        assert!(mentions_value_function("SELECT cortex_vault.read_secret_by_name($1)::int"));
        assert!(mentions_value_function("SET LOCAL cortex_vault.context_token = 'v1.x.y'"));
        assert!(mentions_value_function("SELECT cortex_vault.U&\"create\\005Fsecret\"('n', 'v')"));
        assert!(!mentions_value_function("SELECT cortex_vault.delete_secret($1)"));
    }

    #[test]
    fn double_quoted_values_in_error_messages_are_masked() {
        assert_eq!(
            redact_quoted("invalid input syntax for type integer: \"sk-ant-1\""),
            "invalid input syntax for type integer: \"***\""
        );
        assert_eq!(redact_quoted("a 'b' \"c"), "a '***' \"***\"");
    }

    #[test]
    fn multibyte_text_survives() {
        assert_eq!(redact_literals("é 'ü' ß"), "é '***' ß");
    }
}
