//! Cryptographic transforms for Tandem's IKEv2 and ESP.
//!
//! Layering: this crate is the bottom of the workspace. It knows nothing about
//! packets or protocols; `tandem-esp` and `tandem-ike` build on it.
//!
//! - [`aead`]: AES-GCM-16 (128/256) and ChaCha20-Poly1305 as ESP (RFC 4106,
//!   RFC 7634) and IKEv2 (RFC 5282) use them: a 4-octet salt from the key
//!   material plus an 8-octet explicit IV form the nonce. Two providers sit
//!   behind the [`aead::AeadCipher`] trait, `ring` and RustCrypto, chosen by
//!   cargo features; [`aead::Provider::preferred`] is the faster one built in.
//! - [`cbc_hmac`]: AES-CBC (RFC 3602) with HMAC-SHA2 integrity (RFC 4868).
//! - [`prf`]: HMAC-SHA2 PRFs and IKEv2's `prf+` (RFC 7296 section 2.13).
//! - [`kex`]: Diffie-Hellman groups 14, 15, 19, 20 and 31 with peer-value
//!   validation.
//! - [`proposal`]: strongSwan proposal keywords (`aes256gcm16-prfsha256-x25519`)
//!   parsed into IKEv2 transforms.
//! - [`hash`]: SHA-1 (NAT detection only) and SHA-2 digests.
//! - [`secret`]: zeroize-on-drop, constant-time-compared secret bytes.
//!
//! Nothing here reads a clock or the OS RNG: every function that needs
//! randomness takes a caller's [`rand_core::CryptoRng`].
#![forbid(unsafe_code)]

pub mod aead;
pub mod cbc_hmac;
mod error;
pub mod hash;
pub mod kex;
pub mod prf;
pub mod proposal;
pub mod secret;

pub use error::Error;
pub use rand_core::CryptoRng;
