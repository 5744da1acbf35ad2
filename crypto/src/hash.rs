//! Plain hash functions that protocols use outside a MAC: SHA-1 for IKEv2's
//! NAT detection (RFC 7296 section 2.23) and the SHA-2 family.

use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha384, Sha512};

/// SHA-1 over the concatenation of `parts`. Only for uses that need no
/// collision resistance (NAT-D hashes).
pub fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    digest::<Sha1>(parts).into()
}

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    digest::<Sha256>(parts).into()
}

/// SHA-384 over the concatenation of `parts`.
pub fn sha384(parts: &[&[u8]]) -> [u8; 48] {
    digest::<Sha384>(parts).into()
}

/// SHA-512 over the concatenation of `parts`.
pub fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    digest::<Sha512>(parts).into()
}

fn digest<D: Digest>(parts: &[&[u8]]) -> sha1::digest::Output<D> {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    d.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_fips_180_abc_vectors() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(&sha1(&[b"a", b"bc"])), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex(&sha256(&[b"abc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(&hex(&sha384(&[b"abc"]))[..16], "cb00753f45a35e8b");
        assert_eq!(&hex(&sha512(&[b"abc"]))[..16], "ddaf35a193617aba");
    }
}
