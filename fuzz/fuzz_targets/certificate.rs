//! Arbitrary bytes as an X.509 certificate (a CERT payload's body) and as
//! AUTH data: parsing, the accessors, identity matching and signature
//! verification never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_ike::pubkey::{Certificate, verify_auth};
use tandem_ike::wire::{AuthMethod, IdType};

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = Certificate::from_der(data) {
        let _ = cert.subject();
        let _ = cert.alt_names();
        let _ = cert.check_validity(1_700_000_000);
        let _ = cert.is_ca();
        let _ = cert.matches_identity(IdType::ID_FQDN, b"gw.example");
        if let Ok(key) = cert.public_key() {
            for method in
                [AuthMethod::DIGITAL_SIGNATURE, AuthMethod::ECDSA_256, AuthMethod::ECDSA_384, AuthMethod::RSA]
            {
                let _ = verify_auth(key, method, data, b"signed octets");
            }
        }
        let _ = cert.verify_signature_by(&cert);
    }
});
