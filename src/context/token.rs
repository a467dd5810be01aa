//! Signed, expiring context tokens. Pure Rust: signing and verification are
//! unit-tested without a server.
//!
//! A token is `v1.<payload>.<signature>`: the payload is base64url JSON
//! `{"org": uuid, "dep": text or null, "exp": unix seconds}`, the signature
//! base64url HMAC-SHA256 over `v1.<payload>` with a key that lives in a file
//! read at server start, never in a table. The application signs with the same
//! key outside the database, so SQL run in a session cannot forge a token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Version prefix of every token this release signs and accepts.
const VERSION: &str = "v1";

/// Longest token accepted, in bytes: a uuid, a 255-byte deployment and an
/// expiry encode to well under 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 2048;

/// What a token says about the transaction that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Organization, as a canonical uuid string.
    pub org: String,
    /// Deployment; `None` for an organization-wide context.
    #[serde(default)]
    pub dep: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

/// Why a token was refused. The text never quotes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not three dot-separated parts, unknown version, bad base64 or JSON.
    Malformed,
    /// The signature does not match any loaded signing key.
    BadSignature,
    /// The expiry is in the past.
    Expired,
}

impl TokenError {
    /// A DETAIL sentence for the error.
    pub fn detail(self) -> &'static str {
        match self {
            TokenError::Malformed => "The context token is not a well-formed v1 token.",
            TokenError::BadSignature => "The context token's signature does not verify.",
            TokenError::Expired => "The context token has expired.",
        }
    }
}

fn mac(key: &[u8; 32], signed_part: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(signed_part.as_bytes());
    mac
}

/// Signs claims with `key`.
pub fn sign(key: &[u8; 32], claims: &Claims) -> String {
    let json = serde_json::to_vec(claims).expect("claims serialise");
    let signed_part = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(json));
    let sig = mac(key, &signed_part).finalize().into_bytes();
    format!("{signed_part}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Verifies a token against every loaded key and the clock `now` (unix
/// seconds). The signature is checked before anything in the payload is read.
pub fn verify(keys: &[[u8; 32]], token: &str, now: i64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let (signed_part, sig_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (version, payload_b64) = signed_part.split_once('.').ok_or(TokenError::Malformed)?;
    if version != VERSION {
        return Err(TokenError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD.decode(sig_b64).map_err(|_| TokenError::Malformed)?;
    if !keys.iter().any(|k| mac(k, signed_part).verify_slice(&sig).is_ok()) {
        return Err(TokenError::BadSignature);
    }
    let json = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const ORG: &str = "0a0a0a0a-0000-4000-8000-00000000000a";

    fn claims(exp: i64) -> Claims {
        Claims { org: ORG.into(), dep: Some("agent-a".into()), exp }
    }

    #[test]
    fn signed_token_verifies_and_returns_its_claims() {
        let token = sign(&KEY, &claims(2000));
        assert!(token.starts_with("v1."));
        assert_eq!(verify(&[KEY], &token, 1999), Ok(claims(2000)));
    }

    #[test]
    fn expired_token_is_refused() {
        let token = sign(&KEY, &claims(2000));
        assert_eq!(verify(&[KEY], &token, 2000), Err(TokenError::Expired));
    }

    #[test]
    fn changed_payload_is_refused() {
        let token = sign(&KEY, &claims(2000));
        let other = sign(
            &KEY,
            &Claims { org: "0b0b0b0b-0000-4000-8000-00000000000b".into(), ..claims(2000) },
        );
        // Graft the other payload onto the first signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        let forged = parts.join(".");
        assert_eq!(verify(&[KEY], &forged, 1), Err(TokenError::BadSignature));
    }

    #[test]
    fn token_signed_with_another_key_is_refused_and_rotation_works() {
        let token = sign(&[8; 32], &claims(2000));
        assert_eq!(verify(&[KEY], &token, 1), Err(TokenError::BadSignature));
        assert!(verify(&[KEY, [8; 32]], &token, 1).is_ok());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "v1", "v1.abc", "v2.e30.AAAA", "v1.e30.!!"] {
            assert_eq!(verify(&[KEY], bad, 1), Err(TokenError::Malformed), "{bad}");
        }
        // The signature is checked before the payload is decoded.
        assert_eq!(verify(&[KEY], "v1.!!.AAAA", 1), Err(TokenError::BadSignature));
        let huge = "v1.".to_string() + &"A".repeat(MAX_TOKEN_BYTES);
        assert_eq!(verify(&[KEY], &huge, 1), Err(TokenError::Malformed));
    }

    #[test]
    fn signed_but_unparsable_payload_is_malformed() {
        let signed_part = format!("v1.{}", URL_SAFE_NO_PAD.encode(b"{\"org\":1}"));
        let sig = mac(&KEY, &signed_part).finalize().into_bytes();
        let token = format!("{signed_part}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(verify(&[KEY], &token, 1), Err(TokenError::Malformed));
    }
}
