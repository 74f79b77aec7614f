//! Content hash of the raw index bytes, stored as the checkpoint token.
//!
//! FNV-1a 64 is implemented here rather than taken from a crate: it is a
//! fixed, documented algorithm (no dependency, no version drift, identical
//! on every platform and Rust release, unlike `std::hash::DefaultHasher`,
//! whose output is explicitly unstable). It detects *changes* between two
//! downloads of the same index; it is not a defence against an adversary
//! crafting collisions, which is not a threat here (the worst case is one
//! skipped refresh until the index changes again). The byte length is part
//! of the token to make accidental collisions even less likely.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64-bit.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(OFFSET_BASIS, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// The checkpoint token for an index body: `fnv1a64:<16 hex digits>:<length>`.
pub fn content_token(bytes: &[u8]) -> String {
    format!("fnv1a64:{:016x}:{}", fnv1a64(bytes), bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Reference values of FNV-1a 64.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn token_names_algorithm_hash_and_length() {
        assert_eq!(content_token(b"a"), "fnv1a64:af63dc4c8601ec8c:1");
        assert_ne!(content_token(b"{}"), content_token(b"{ }"));
    }
}
