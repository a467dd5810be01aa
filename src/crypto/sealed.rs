//! Sealed input: a client encrypts a value to the vault's X25519 public key
//! (a libsodium-compatible sealed box: ephemeral key, XSalsa20-Poly1305), so
//! the plaintext never appears in SQL text, bind parameters, logs or packets.
//! The sealing key pair is derived from a master key version, so it adds no
//! key material to manage and rotates with the master key.

use super::{CryptoError, Key};
use crypto_box::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// Domain label of the sealing key derivation, version 1.
const SEALING_DOMAIN: &[u8] = b"cortex_vault/sealing-key/v1\0";

/// Bytes a sealed box adds: the ephemeral public key and the Poly1305 tag.
pub const SEAL_OVERHEAD: usize = 32 + 16;

fn secret_key(master: &Key) -> SecretKey {
    let mut bytes: [u8; 32] = Sha256::new()
        .chain_update(SEALING_DOMAIN)
        .chain_update(master.as_bytes())
        .finalize()
        .into();
    let key = SecretKey::from(bytes);
    bytes.zeroize();
    key
}

/// The public key clients seal to, for a master key version.
pub fn public_key(master: &Key) -> [u8; 32] {
    *secret_key(master).public_key().as_bytes()
}

/// Opens a sealed box made for `master`'s public key.
pub fn unseal(master: &Key, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() <= SEAL_OVERHEAD {
        return Err(CryptoError::Truncated);
    }
    secret_key(master).unseal(sealed).map(Zeroizing::new).map_err(|_| CryptoError::Authentication)
}

/// Seals a value to a public key, as a client does; used by tests and tools.
pub fn seal(public: &[u8; 32], value: &[u8]) -> Result<Vec<u8>, CryptoError> {
    PublicKey::from(*public)
        .seal(&mut crypto_box::aead::OsRng, value)
        .map_err(|_| CryptoError::Random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_only_with_its_master_key() {
        let master = Key::generate().unwrap();
        let sealed = seal(&public_key(&master), b"sk-ant-api03-sealed").unwrap();
        assert_eq!(sealed.len(), b"sk-ant-api03-sealed".len() + SEAL_OVERHEAD);
        assert_eq!(&unseal(&master, &sealed).unwrap()[..], b"sk-ant-api03-sealed");
        let other = Key::generate().unwrap();
        assert_eq!(unseal(&other, &sealed).unwrap_err(), CryptoError::Authentication);
    }

    #[test]
    fn tampered_or_short_boxes_are_refused() {
        let master = Key::generate().unwrap();
        let mut sealed = seal(&public_key(&master), b"value").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(unseal(&master, &sealed).unwrap_err(), CryptoError::Authentication);
        assert_eq!(unseal(&master, &[0; SEAL_OVERHEAD]).unwrap_err(), CryptoError::Truncated);
    }

    #[test]
    fn public_key_is_stable_per_master_key() {
        let master = Key::from_bytes([3; 32]);
        assert_eq!(public_key(&master), public_key(&master.clone()));
        assert_ne!(public_key(&master), public_key(&Key::from_bytes([4; 32])));
    }
}
