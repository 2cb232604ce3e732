//! Content fingerprints: the stable names that identify cells, datasets and templates.
//!
//! Every id in `rlaif` is derived from content, never from time or position, so that the
//! same input always yields the same name. Fingerprints are SHA-256 digests shown as
//! lowercase hex, shortened where a human reads them.

use sha2::{Digest, Sha256};

/// The full SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex(&Sha256::digest(bytes.as_ref()))
}

/// `bytes` as lowercase hex digits.
pub fn hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// A 12-hex-digit id (48 bits): short enough to read, long enough that a grid of a
/// million cells has no collision in practice.
pub fn short_id(bytes: impl AsRef<[u8]>) -> String {
    let mut hex = sha256_hex(bytes);
    hex.truncate(12);
    hex
}

/// The first 8 bytes of the SHA-256 of `bytes`, as an integer: a seed or a bucket.
pub fn hash_u64(bytes: impl AsRef<[u8]>) -> u64 {
    let digest = Sha256::digest(bytes.as_ref());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Whether the SHA-256 of `bytes`, read as one big-endian integer, is even.
///
/// This is the position rule the shared HH-RLHF files were built with (`chosen` is
/// `response_a` iff `int(sha256(id), 16) % 2 == 0`), so the loader can reproduce them.
pub fn sha256_is_even(bytes: impl AsRef<[u8]>) -> bool {
    let digest = Sha256::digest(bytes.as_ref());
    digest[31] % 2 == 0
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input_is_the_known_digest() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(short_id(""), "e3b0c44298fc");
    }

    #[test]
    fn parity_reads_the_last_byte() {
        // sha256("") ends in 0x55: odd.
        assert!(!sha256_is_even(""));
        assert_eq!(hash_u64(""), 0xe3b0_c442_98fc_1c14);
    }
}
