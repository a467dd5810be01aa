//! The one error type of the extension and its SQLSTATEs. Every message is
//! lowercase without a trailing period; no variant carries a secret value,
//! a key, or SQL text that could hold one.

use crate::crypto::CryptoError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Result of every fallible step below the SQL surface.
pub type VaultResult<T> = Result<T, VaultError>;

/// Everything a user of the extension can meet.
#[derive(Debug)]
pub enum VaultError {
    /// 22004: a required argument was NULL.
    NullArgument(&'static str),
    /// 22023: an argument is out of range or malformed.
    InvalidArgument { message: String, detail: String },
    /// 55000: the library was not in `shared_preload_libraries`.
    NotPreloaded,
    /// 55000: no master key could be loaded at server start.
    NoMasterKey { reason: String },
    /// 55000: what is stored is wrapped by a master key version not loaded.
    MasterKeyMissing { needed: String, loaded: Vec<String> },
    /// 42501: no organization context is set for this transaction.
    NoContext,
    /// 22P02: a context setting is not well formed.
    MalformedContext { setting: &'static str, detail: String },
    /// 42501: the context was refused (role binding, strict mode, token).
    ContextRefused { detail: String, hint: &'static str },
    /// 42704: the organization in context is not registered.
    UnknownOrg,
    /// 42710: `create_org` for an organization that exists.
    OrgExists,
    /// 55000: the organization's key was destroyed by `shred_org`.
    OrgShredded,
    /// 42704: no such secret for this context; foreign secrets look the same.
    SecretNotFound,
    /// 23505: a secret of this name exists for the deployment.
    DuplicateName,
    /// 40001: `rotate_secret` check-and-set saw another version.
    VersionConflict { expected: i32, actual: i32 },
    /// XX001: a stored blob does not open under its binding.
    Undecryptable(CryptoError),
    /// 58000: the operating system's random source failed.
    Random,
    /// XX000: an internal query failed; the text names the step only.
    Internal(String),
    /// Any other report prepared by a caller (isolation helpers).
    Report { code: PgSqlErrorCode, message: String, detail: Option<String> },
}

impl From<CryptoError> for VaultError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Random => VaultError::Random,
            other => VaultError::Undecryptable(other),
        }
    }
}

impl From<pgrx::spi::SpiError> for VaultError {
    fn from(e: pgrx::spi::SpiError) -> Self {
        VaultError::Internal(format!("internal query failed: {e}"))
    }
}

impl VaultError {
    /// The SQLSTATE of the variant.
    pub fn code(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            VaultError::NullArgument(_) => ERRCODE_NULL_VALUE_NOT_ALLOWED,
            VaultError::InvalidArgument { .. } => ERRCODE_INVALID_PARAMETER_VALUE,
            VaultError::NotPreloaded
            | VaultError::NoMasterKey { .. }
            | VaultError::MasterKeyMissing { .. }
            | VaultError::OrgShredded => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            VaultError::NoContext | VaultError::ContextRefused { .. } => {
                ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            VaultError::MalformedContext { .. } => ERRCODE_INVALID_TEXT_REPRESENTATION,
            VaultError::UnknownOrg | VaultError::SecretNotFound => ERRCODE_UNDEFINED_OBJECT,
            VaultError::OrgExists => ERRCODE_DUPLICATE_OBJECT,
            VaultError::DuplicateName => ERRCODE_UNIQUE_VIOLATION,
            VaultError::VersionConflict { .. } => ERRCODE_T_R_SERIALIZATION_FAILURE,
            VaultError::Undecryptable(_) => ERRCODE_DATA_CORRUPTED,
            VaultError::Random => ERRCODE_SYSTEM_ERROR,
            VaultError::Internal(_) => ERRCODE_INTERNAL_ERROR,
            VaultError::Report { code, .. } => *code,
        }
    }

    /// The primary message: lowercase, no trailing period.
    pub fn message(&self) -> String {
        match self {
            VaultError::NullArgument(arg) => format!("argument \"{arg}\" must not be null"),
            VaultError::InvalidArgument { message, .. } => message.clone(),
            VaultError::NotPreloaded => "cortex_vault was not loaded at server start".into(),
            VaultError::NoMasterKey { .. } => "no master key is loaded".into(),
            VaultError::MasterKeyMissing { needed, .. } => {
                format!("master key version {needed} is not loaded")
            }
            VaultError::NoContext => "no organization context is set".into(),
            VaultError::MalformedContext { setting, .. } => format!("{setting} is malformed"),
            VaultError::ContextRefused { .. } => "organization context refused".into(),
            VaultError::UnknownOrg => "organization is not registered".into(),
            VaultError::OrgExists => "organization is already registered".into(),
            VaultError::OrgShredded => "organization has been shredded".into(),
            VaultError::SecretNotFound => "secret not found".into(),
            VaultError::DuplicateName => "a secret with this name already exists".into(),
            VaultError::VersionConflict { .. } => "secret version does not match".into(),
            VaultError::Undecryptable(_) => "stored secret could not be decrypted".into(),
            VaultError::Random => "could not obtain random bytes".into(),
            VaultError::Internal(step) => step.clone(),
            VaultError::Report { message, .. } => message.clone(),
        }
    }

    /// The DETAIL sentence, where one helps.
    pub fn detail(&self) -> Option<String> {
        match self {
            VaultError::InvalidArgument { detail, .. } => Some(detail.clone()),
            VaultError::MalformedContext { detail, .. } => Some(detail.clone()),
            VaultError::ContextRefused { detail, .. } => Some(detail.clone()),
            VaultError::NoMasterKey { reason } => Some(reason.clone()),
            VaultError::MasterKeyMissing { loaded, .. } => Some(if loaded.is_empty() {
                "The server has no master key loaded.".into()
            } else {
                format!("The server loaded master key versions {}.", loaded.join(", "))
            }),
            VaultError::SecretNotFound => Some(
                "No secret with this id or name is visible to the current organization \
                 and deployment."
                    .into(),
            ),
            VaultError::VersionConflict { expected, actual } => Some(format!(
                "The caller expected version {expected}; the current version is {actual}."
            )),
            VaultError::Undecryptable(CryptoError::UnknownFormat(b)) => Some(format!(
                "The stored value has format byte {b}, which this release cannot read."
            )),
            VaultError::Undecryptable(_) => Some(
                "The ciphertext does not belong to this secret, organization, deployment \
                 or version, or it was changed."
                    .into(),
            ),
            VaultError::Report { detail, .. } => detail.clone(),
            _ => None,
        }
    }

    /// The HINT sentence, where one helps.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            VaultError::NotPreloaded => {
                Some("Add cortex_vault to shared_preload_libraries in postgresql.conf and restart.")
            }
            VaultError::NoMasterKey { .. } => Some(
                "Set cortex_vault.master_key_file or cortex_vault.master_key_command in \
                 postgresql.conf and restart; the server log says why loading failed.",
            ),
            VaultError::MasterKeyMissing { .. } => Some(
                "Add the key with this fingerprint to the master key source, oldest first, \
                 and restart.",
            ),
            VaultError::NoContext => Some(
                "Run SET LOCAL cortex_vault.org_id = '<organization uuid>' in the transaction.",
            ),
            VaultError::ContextRefused { hint, .. } => Some(hint),
            VaultError::UnknownOrg => Some("An administrator registers it with create_org()."),
            VaultError::DuplicateName => {
                Some("Rotate the existing secret with rotate_secret() or choose another name.")
            }
            VaultError::VersionConflict { .. } => {
                Some("Read the current version from secret_metadata and try again.")
            }
            _ => None,
        }
    }

    /// Raises the error in Postgres; the transaction aborts, the session goes on.
    pub fn raise(self) -> ! {
        let mut report = ErrorReport::new(self.code(), self.message(), "cortex_vault");
        if let Some(detail) = self.detail() {
            report = report.set_detail(detail);
        }
        if let Some(hint) = self.hint() {
            report = report.set_hint(hint);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("an ERROR report does not return")
    }
}

/// Unwraps a result at the SQL surface, raising the error in Postgres.
pub fn or_raise<T>(result: VaultResult<T>) -> T {
    result.unwrap_or_else(|e| e.raise())
}

/// The value of a required argument, or the NULL-argument error.
pub fn required<T>(value: Option<T>, name: &'static str) -> VaultResult<T> {
    value.ok_or(VaultError::NullArgument(name))
}
