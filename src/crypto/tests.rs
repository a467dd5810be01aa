use super::*;

fn binding(deployment: Option<&str>, version: i32) -> SecretBinding<'_> {
    SecretBinding { org: [1; 16], secret: [2; 16], deployment, version, org_key_version: 1 }
}

#[test]
fn round_trip_returns_the_plaintext() {
    let key = Key::generate().unwrap();
    let aad = binding(Some("agent-a"), 1).encode();
    let blob = seal(&key, b"sk-ant-api03-example", &aad).unwrap();
    assert_eq!(blob[0], FORMAT_XCHACHA_V1);
    assert_eq!(blob.len(), b"sk-ant-api03-example".len() + OVERHEAD);
    assert_eq!(&open(&key, &blob, &aad).unwrap()[..], b"sk-ant-api03-example");
}

#[test]
fn every_seal_uses_a_fresh_nonce() {
    let key = Key::generate().unwrap();
    let a = seal(&key, b"same", b"aad").unwrap();
    let b = seal(&key, b"same", b"aad").unwrap();
    assert_ne!(a[1..1 + NONCE_LEN], b[1..1 + NONCE_LEN]);
    assert_ne!(a, b);
}

#[test]
fn blob_does_not_contain_the_plaintext() {
    let key = Key::generate().unwrap();
    let canary = b"CANARY-0123456789-CANARY";
    let blob = seal(&key, canary, b"").unwrap();
    assert!(!blob.windows(canary.len()).any(|w| w == canary));
}

#[test]
fn changed_binding_fails_to_open() {
    let key = Key::generate().unwrap();
    let blob = seal(&key, b"value", &binding(Some("agent-a"), 1).encode()).unwrap();

    let other_deployment = binding(Some("agent-b"), 1).encode();
    let org_wide = binding(None, 1).encode();
    let other_version = binding(Some("agent-a"), 2).encode();
    let mut other_secret = binding(Some("agent-a"), 1);
    other_secret.secret = [3; 16];
    let mut other_org = binding(Some("agent-a"), 1);
    other_org.org = [9; 16];
    let mut other_key_version = binding(Some("agent-a"), 1);
    other_key_version.org_key_version = 2;

    for aad in [
        other_deployment,
        org_wide,
        other_version,
        other_secret.encode(),
        other_org.encode(),
        other_key_version.encode(),
    ] {
        assert_eq!(open(&key, &blob, &aad).unwrap_err(), CryptoError::Authentication);
    }
}

#[test]
fn deployment_encoding_is_unambiguous() {
    // An empty deployment name must not encode like an organization-wide secret.
    assert_ne!(binding(Some(""), 1).encode(), binding(None, 1).encode());
}

#[test]
fn wrong_key_fails_to_open() {
    let blob = seal(&Key::generate().unwrap(), b"value", b"aad").unwrap();
    let other = Key::generate().unwrap();
    assert_eq!(open(&other, &blob, b"aad").unwrap_err(), CryptoError::Authentication);
}

#[test]
fn flipped_bit_fails_to_open() {
    let key = Key::generate().unwrap();
    let blob = seal(&key, b"value", b"aad").unwrap();
    for i in 1..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x01;
        assert_eq!(open(&key, &bad, b"aad").unwrap_err(), CryptoError::Authentication);
    }
}

#[test]
fn unknown_format_and_truncation_are_named() {
    let key = Key::generate().unwrap();
    let mut blob = seal(&key, b"value", b"aad").unwrap();
    assert_eq!(open(&key, &blob[..OVERHEAD - 1], b"aad").unwrap_err(), CryptoError::Truncated);
    blob[0] = 0x7f;
    assert_eq!(open(&key, &blob, b"aad").unwrap_err(), CryptoError::UnknownFormat(0x7f));
}

#[test]
fn wrapped_key_unwraps_only_with_its_binding() {
    let master = Key::generate().unwrap();
    let org_key = Key::generate().unwrap();
    let kb = KeyBinding { org: [4; 16], org_key_version: 1, master_fingerprint: [5; 8] };
    let wrapped = wrap_key(&master, &org_key, &kb).unwrap();
    assert_eq!(unwrap_key(&master, &wrapped, &kb).unwrap().as_bytes(), org_key.as_bytes());

    let moved = KeyBinding { org: [6; 16], ..kb.clone() };
    assert!(unwrap_key(&master, &wrapped, &moved).is_err());
    let bumped = KeyBinding { org_key_version: 2, ..kb };
    assert!(unwrap_key(&master, &wrapped, &bumped).is_err());
}

#[test]
fn debug_output_hides_key_bytes() {
    let key = Key::from_bytes([0xab; KEY_LEN]);
    assert_eq!(format!("{key:?}"), "Key(..)");
}
