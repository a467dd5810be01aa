//! Decrypting one 200-byte value with the extension's crypto module, against
//! copying 200 bytes, in alternating rounds on the same core. Prints one JSON
//! object for bench/report.py.
//!
//!     cortex_vault_crypto_bench [ROUNDS] [OPS_PER_ROUND]

// The module is compiled here exactly as in the extension; the parts a
// benchmark does not call are dead code in this crate.
#[allow(dead_code)]
#[path = "../../../src/crypto/mod.rs"]
mod crypto;

use crypto::{Key, KeyBinding, SecretBinding};
use std::hint::black_box;
use std::time::Instant;

/// Size of the value, in bytes: a provider key with its metadata is 40 to
/// 200 bytes; 200 is the figure.
const VALUE_LEN: usize = 200;

/// Rounds of each side, alternating; the median round is reported.
const DEFAULT_ROUNDS: usize = 201;

/// Operations timed together in one round: about 1 ms of decryption, long
/// enough for the clock's resolution, short enough to alternate often.
const DEFAULT_OPS: usize = 1000;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let rounds = args.next().unwrap_or(DEFAULT_ROUNDS);
    let ops = args.next().unwrap_or(DEFAULT_OPS);

    // A value, its key and its binding, as a read finds them.
    let key = Key::generate().expect("random key");
    let value: Vec<u8> = (0..VALUE_LEN).map(|i| b'A' + (i % 26) as u8).collect();
    let binding = SecretBinding {
        org: [7; 16],
        secret: [9; 16],
        deployment: Some("support-bot"),
        version: 1,
        org_key_version: 1,
    };
    let aad = binding.encode();
    let blob = crypto::seal(&key, &value, &aad).expect("seal");

    // The organization key wrapped by a master key, as stored in org_keys.
    let master = Key::generate().expect("random key");
    let key_binding = KeyBinding { org: [7; 16], org_key_version: 1, master_fingerprint: [3; 8] };
    let wrapped = crypto::wrap_key(&master, &key, &key_binding).expect("wrap");

    let decrypt = || {
        let plain = crypto::open(&key, black_box(&blob), &binding.encode()).expect("open");
        drop(black_box(plain));
    };
    let copy = || {
        let plain = black_box(value.as_slice()).to_vec();
        drop(black_box(plain));
    };
    // What a read does in Rust: unwrap the organization key, then decrypt.
    let read_path = || {
        let org_key = crypto::unwrap_key(&master, black_box(&wrapped), &key_binding)
            .expect("unwrap");
        let plain = crypto::open(&org_key, black_box(&blob), &binding.encode()).expect("open");
        drop(black_box(plain));
    };

    let sides: [(&str, &dyn Fn()); 3] =
        [("decrypt", &decrypt), ("copy", &copy), ("unwrap_and_decrypt", &read_path)];
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); sides.len()];
    for round in 0..rounds {
        // Rotating the order removes any advantage of going first.
        for k in 0..sides.len() {
            let i = (round + k) % sides.len();
            times[i].push(time_round(sides[i].1, ops));
        }
    }

    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    let (dec, cpy, path) = (medians[0], medians[1], medians[2]);
    println!(
        "{{\"value_bytes\": {VALUE_LEN}, \"rounds\": {rounds}, \"ops_per_round\": {ops}, \
         \"decrypt_ns\": {dec:.1}, \"copy_ns\": {cpy:.1}, \"unwrap_and_decrypt_ns\": {path:.1}, \
         \"ratio\": {:.1}, \"decrypt_bytes_per_s\": {:.0}, \"copy_bytes_per_s\": {:.0}}}",
        dec / cpy,
        VALUE_LEN as f64 / dec * 1e9,
        VALUE_LEN as f64 / cpy * 1e9
    );
}

/// Nanoseconds per operation over one round of `ops` calls.
fn time_round(f: &dyn Fn(), ops: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..ops {
        f();
    }
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
