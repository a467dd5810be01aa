//! Associated data: what a blob is bound to. A blob opens only where every
//! field below is the same as when it was sealed, so a ciphertext copied to
//! another secret, organization, deployment or version fails to decrypt.
//!
//! The encoding is canonical: a domain label, fixed-width fields, and a
//! length-prefixed deployment, so two different bindings never encode alike.

/// Domain label of a secret value's associated data, version 1.
const SECRET_DOMAIN: &[u8] = b"cortex_vault/secret/v1\0";

/// Domain label of a wrapped organization key's associated data, version 1.
const KEY_DOMAIN: &[u8] = b"cortex_vault/org-key/v1\0";

/// Where a secret value belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretBinding<'a> {
    /// Organization id, 16 bytes of its uuid.
    pub org: [u8; 16],
    /// Secret id, 16 bytes of its uuid.
    pub secret: [u8; 16],
    /// Deployment the secret is scoped to; `None` for an organization-wide secret.
    pub deployment: Option<&'a str>,
    /// Version of the secret's value, starting at 1.
    pub version: i32,
    /// Version of the organization key that encrypts the value.
    pub org_key_version: i32,
}

impl SecretBinding<'_> {
    /// The canonical byte encoding used as associated data.
    pub fn encode(&self) -> Vec<u8> {
        let dep_len = self.deployment.map_or(0, str::len);
        let mut out = Vec::with_capacity(SECRET_DOMAIN.len() + 45 + dep_len);
        out.extend_from_slice(SECRET_DOMAIN);
        out.extend_from_slice(&self.org);
        out.extend_from_slice(&self.secret);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.org_key_version.to_be_bytes());
        match self.deployment {
            None => out.push(0),
            Some(d) => {
                out.push(1);
                out.extend_from_slice(&(d.len() as u32).to_be_bytes());
                out.extend_from_slice(d.as_bytes());
            }
        }
        out
    }
}

/// Where a wrapped organization key belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBinding {
    /// Organization id, 16 bytes of its uuid.
    pub org: [u8; 16],
    /// Version of the organization key, raised by every key rotation.
    pub org_key_version: i32,
    /// Fingerprint of the master key version that wraps it.
    pub master_fingerprint: [u8; 8],
}

impl KeyBinding {
    /// The canonical byte encoding used as associated data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(KEY_DOMAIN.len() + 28);
        out.extend_from_slice(KEY_DOMAIN);
        out.extend_from_slice(&self.org);
        out.extend_from_slice(&self.org_key_version.to_be_bytes());
        out.extend_from_slice(&self.master_fingerprint);
        out
    }
}
