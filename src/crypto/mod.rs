//! The ciphertext format and the AEAD around it. Pure Rust: nothing here knows
//! about Postgres, so every property is unit-tested without a server.
//!
//! A sealed blob is `format (1 byte) || nonce (24 bytes) || ciphertext || tag (16 bytes)`.
//! The leading format byte lets a later release change the layout without
//! guessing what an old row holds.

mod binding;
pub mod sealed;

pub use binding::{KeyBinding, SecretBinding};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, Zeroizing};

/// Format byte of every blob this release writes: XChaCha20-Poly1305 with a
/// random 24-byte nonce, associated data built by [`binding`].
pub const FORMAT_XCHACHA_V1: u8 = 0x01;

/// Key length in bytes: XChaCha20-Poly1305 takes a 256-bit key.
pub const KEY_LEN: usize = 32;

/// Nonce length in bytes. 192 random bits make a collision negligible even
/// after billions of encryptions under one key, which 96-bit nonces do not.
pub const NONCE_LEN: usize = 24;

/// Poly1305 tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Bytes a blob adds to its plaintext: format byte, nonce and tag.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// Why a blob could not be opened. None of the variants carries key or
/// plaintext material, so they are safe to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// The blob is shorter than format byte, nonce and tag together.
    Truncated,
    /// The leading format byte is not one this release knows.
    UnknownFormat(u8),
    /// The tag did not verify: wrong key, changed bytes, or the blob was
    /// bound to another secret, organization, deployment or version.
    Authentication,
    /// The operating system's random source failed.
    Random,
}

/// A 256-bit symmetric key that is wiped from memory when dropped.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl Key {
    /// Wraps raw key bytes; the caller's copy should be wiped by the caller.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Key(Zeroizing::new(bytes))
    }

    /// Draws a fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::getrandom(bytes.as_mut()).map_err(|_| CryptoError::Random)?;
        Ok(Key(bytes))
    }

    /// The raw bytes, for wrapping under another key.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Encrypts `plaintext` under `key` with a fresh random nonce, binding `aad`.
pub fn seal(key: &Key, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).map_err(|_| CryptoError::Random)?;

    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let body = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .map_err(|_| CryptoError::Authentication)?;

    let mut blob = Vec::with_capacity(1 + NONCE_LEN + body.len());
    blob.push(FORMAT_XCHACHA_V1);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&body);
    Ok(blob)
}

/// Decrypts a blob made by [`seal`]; the plaintext is wiped when dropped.
pub fn open(key: &Key, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.len() < OVERHEAD {
        return Err(CryptoError::Truncated);
    }
    if blob[0] != FORMAT_XCHACHA_V1 {
        return Err(CryptoError::UnknownFormat(blob[0]));
    }

    let (nonce, body) = blob[1..].split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Authentication)
}

/// Wraps an organization key under a master key.
pub fn wrap_key(master: &Key, org_key: &Key, binding: &KeyBinding) -> Result<Vec<u8>, CryptoError> {
    seal(master, org_key.as_bytes(), &binding.encode())
}

/// Unwraps an organization key; fails unless master key and binding match.
pub fn unwrap_key(master: &Key, wrapped: &[u8], binding: &KeyBinding) -> Result<Key, CryptoError> {
    let mut plain = open(master, wrapped, &binding.encode())?;
    if plain.len() != KEY_LEN {
        plain.zeroize();
        return Err(CryptoError::Authentication);
    }
    let mut bytes = [0u8; KEY_LEN];
    bytes.copy_from_slice(&plain);
    let key = Key::from_bytes(bytes);
    bytes.zeroize();
    Ok(key)
}

#[cfg(test)]
mod tests;
