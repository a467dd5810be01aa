//! Master key sources and fingerprints. Pure Rust: the file and command are
//! read here, the server-side wiring lives in `keys/mod.rs`.
//!
//! The format is one key per line, 64 hexadecimal characters, oldest first;
//! blank lines and lines starting with `#` are ignored. The last key encrypts,
//! the older ones only decrypt.

use crate::crypto::{Key, KEY_LEN};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Domain label hashed before the key, so a fingerprint cannot be confused with
/// any other SHA-256 of the same bytes.
const FINGERPRINT_DOMAIN: &[u8] = b"cortex_vault/master-key-fingerprint/v1\0";

/// Bytes of the SHA-256 kept as fingerprint: 64 bits tell key versions apart
/// and reveal nothing useful about a 256-bit key.
pub const FINGERPRINT_LEN: usize = 8;

/// Most key versions one source may hold; more points at a wrong file.
const MAX_VERSIONS: usize = 64;

/// Largest key source accepted, in bytes: 64 keys with comments fit easily.
const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// One version of the master key with its fingerprint.
#[derive(Clone, Debug)]
pub struct MasterKey {
    /// The key itself; wiped when dropped.
    pub key: Key,
    /// First bytes of a domain-separated SHA-256 of the key.
    pub fingerprint: [u8; FINGERPRINT_LEN],
}

/// Why a key source was refused. Messages name line numbers, never content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// A line is not 64 hexadecimal characters.
    BadLine(usize),
    /// No key line at all.
    Empty,
    /// The same key appears twice.
    Duplicate(usize),
    /// More than [`MAX_VERSIONS`] keys, or more than [`MAX_SOURCE_BYTES`].
    TooLarge,
    /// The file could not be read, or has unsafe permissions.
    Io(String),
    /// The command failed or could not be started.
    Command(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::BadLine(n) => write!(f, "line {n} is not 64 hexadecimal characters"),
            SourceError::Empty => f.write_str("it holds no key"),
            SourceError::Duplicate(n) => write!(f, "line {n} repeats an earlier key"),
            SourceError::TooLarge => write!(f, "it holds more than {MAX_VERSIONS} keys"),
            SourceError::Io(msg) | SourceError::Command(msg) => f.write_str(msg),
        }
    }
}

/// Fingerprint of a key, as stored beside everything it wraps.
pub fn fingerprint(key: &Key) -> [u8; FINGERPRINT_LEN] {
    let digest = Sha256::new().chain_update(FINGERPRINT_DOMAIN).chain_update(key.as_bytes());
    let mut out = [0u8; FINGERPRINT_LEN];
    out.copy_from_slice(&digest.finalize()[..FINGERPRINT_LEN]);
    out
}

/// Hexadecimal form of a fingerprint, as shown in errors and logs.
pub fn fingerprint_hex(fp: &[u8; FINGERPRINT_LEN]) -> String {
    fp.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a fingerprint written by [`fingerprint_hex`].
pub fn parse_fingerprint(text: &str) -> Option<[u8; FINGERPRINT_LEN]> {
    let mut out = [0u8; FINGERPRINT_LEN];
    decode_hex(text.as_bytes(), &mut out).then_some(out)
}

/// Parses the text of a key source, oldest key first.
pub fn parse_keys(text: &[u8]) -> Result<Vec<MasterKey>, SourceError> {
    if text.len() > MAX_SOURCE_BYTES {
        return Err(SourceError::TooLarge);
    }
    let mut keys: Vec<MasterKey> = Vec::new();
    for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
        let line = raw.trim_ascii();
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        if line.len() != 2 * KEY_LEN || !decode_hex(line, bytes.as_mut()) {
            return Err(SourceError::BadLine(i + 1));
        }
        let key = Key::from_bytes(*bytes);
        let fp = fingerprint(&key);
        if keys.iter().any(|k| k.fingerprint == fp) {
            return Err(SourceError::Duplicate(i + 1));
        }
        if keys.len() == MAX_VERSIONS {
            return Err(SourceError::TooLarge);
        }
        keys.push(MasterKey { key, fingerprint: fp });
    }
    if keys.is_empty() {
        return Err(SourceError::Empty);
    }
    Ok(keys)
}

/// Reads a key file; refuses one that the group or others may read, the way
/// the server refuses such a TLS private key.
pub fn read_key_file(path: &str) -> Result<Vec<MasterKey>, SourceError> {
    use std::os::unix::fs::PermissionsExt;

    let meta = std::fs::metadata(path).map_err(|e| SourceError::Io(io_reason(&e)))?;
    if !meta.is_file() {
        return Err(SourceError::Io("it is not a regular file".into()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(SourceError::Io(
            "group or others may access it; it must be mode 0600 or stricter".into(),
        ));
    }
    let text = Zeroizing::new(std::fs::read(path).map_err(|e| SourceError::Io(io_reason(&e)))?);
    parse_keys(&text)
}

/// Runs a key command with `/bin/sh -c` and parses what it prints.
pub fn run_key_command(command: &str) -> Result<Vec<MasterKey>, SourceError> {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| SourceError::Command(format!("it could not be started: {}", io_reason(&e))))?;
    let text = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(SourceError::Command(format!("it exited with {}", out.status)));
    }
    parse_keys(&text)
}

/// The reason of an I/O error without the path or any content.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("{}", e.kind()),
    }
}

/// Decodes hex into `out`; false unless `text` is exactly twice its length.
fn decode_hex(text: &[u8], out: &mut [u8]) -> bool {
    if text.len() != 2 * out.len() {
        return false;
    }
    for (dst, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        match (hex_val(pair[0]), hex_val(pair[1])) {
            (Some(hi), Some(lo)) => *dst = hi << 4 | lo,
            _ => return false,
        }
    }
    true
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "FFEEDDCCBBAA99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn parses_keys_oldest_first_skipping_comments() {
        let text = format!("# rotated 2026-12\n\n{K1}\n  {K2}  \n");
        let keys = parse_keys(text.as_bytes()).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].key.as_bytes()[1], 0x01);
        assert_eq!(keys[1].key.as_bytes()[0], 0xff);
        assert_ne!(keys[0].fingerprint, keys[1].fingerprint);
    }

    #[test]
    fn bad_line_is_named_by_number_without_content() {
        let text = format!("{K1}\n# ok\nnot-a-key\n");
        let err = parse_keys(text.as_bytes()).unwrap_err();
        assert_eq!(err, SourceError::BadLine(3));
        assert!(!err.to_string().contains("not-a-key"));
    }

    #[test]
    fn short_long_and_non_hex_lines_are_refused() {
        assert_eq!(parse_keys(&K1.as_bytes()[..62]).unwrap_err(), SourceError::BadLine(1));
        assert_eq!(parse_keys(format!("{K1}0").as_bytes()).unwrap_err(), SourceError::BadLine(1));
        let bad = K1.replace('0', "g");
        assert_eq!(parse_keys(bad.as_bytes()).unwrap_err(), SourceError::BadLine(1));
    }

    #[test]
    fn empty_and_duplicate_sources_are_refused() {
        assert_eq!(parse_keys(b"# nothing\n\n").unwrap_err(), SourceError::Empty);
        let dup = format!("{K1}\n{}\n", K1.to_uppercase());
        assert_eq!(parse_keys(dup.as_bytes()).unwrap_err(), SourceError::Duplicate(2));
    }

    #[test]
    fn fingerprint_is_stable_and_round_trips() {
        let keys = parse_keys(K1.as_bytes()).unwrap();
        let hex = fingerprint_hex(&keys[0].fingerprint);
        assert_eq!(hex.len(), 16);
        assert_eq!(parse_fingerprint(&hex), Some(keys[0].fingerprint));
        assert_eq!(fingerprint(&keys[0].key), keys[0].fingerprint);
        assert!(!K1.contains(&hex));
    }

    #[test]
    fn key_file_with_open_permissions_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cv-keytest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.key");
        std::fs::write(&path, K1).unwrap();

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_key_file(path.to_str().unwrap()), Err(SourceError::Io(_))));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key_file(path.to_str().unwrap()).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_command_output_is_parsed_and_failure_reported() {
        let keys = run_key_command(&format!("printf '%s\\n' {K1} {K2}")).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(matches!(run_key_command("exit 3"), Err(SourceError::Command(_))));
    }
}
