//! The IANA "IKEv2 Parameters" registries as open newtypes.
//!
//! Each registry is a tuple struct around its wire integer with named
//! associated consts. Any value, named or not, converts in and out unchanged,
//! so an unknown value received from a peer round-trips; `Debug` and
//! `Display` print the registry name when Tandem knows it and
//! `Type(value)` otherwise.

use core::fmt;

/// Declares an open registry newtype, its named values and its formatting.
macro_rules! registry {
    (
        $(#[$doc:meta])*
        $name:ident($int:ty) {
            $( $(#[$cdoc:meta])* $konst:ident = $val:literal, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        #[allow(non_upper_case_globals, reason = "payload names follow RFC 7296 notation (IDi, TSr)")]
        impl $name {
            $( $(#[$cdoc])* pub const $konst: Self = Self($val); )*

            /// The registry name of this value, or `None` if Tandem does not know it.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some(stringify!($konst)), )*
                    _ => None,
                }
            }
        }

        impl From<$int> for $name {
            fn from(value: $int) -> Self {
                Self(value)
            }
        }

        impl From<$name> for $int {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, concat!(stringify!($name), "({})"), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

registry! {
    /// IKEv2 Exchange Types (RFC 7296 section 3.1).
    ExchangeType(u8) {
        /// IKE_SA_INIT: key exchange, nonces and algorithm negotiation.
        IKE_SA_INIT = 34,
        /// IKE_AUTH: identities, authentication and the first Child SA.
        IKE_AUTH = 35,
        /// CREATE_CHILD_SA: new or rekeyed Child SAs and IKE SA rekeying.
        CREATE_CHILD_SA = 36,
        /// INFORMATIONAL: notifications, deletes, liveness checks.
        INFORMATIONAL = 37,
    }
}

registry! {
    /// IKEv2 Payload Types (RFC 7296 section 3.2, RFC 7383 section 2.5).
    PayloadType(u8) {
        /// No Next Payload: the end of a payload chain.
        NONE = 0,
        /// Security Association.
        SA = 33,
        /// Key Exchange.
        KE = 34,
        /// Identification - Initiator.
        IDi = 35,
        /// Identification - Responder.
        IDr = 36,
        /// Certificate.
        CERT = 37,
        /// Certificate Request.
        CERTREQ = 38,
        /// Authentication.
        AUTH = 39,
        /// Nonce (Ni, Nr).
        NONCE = 40,
        /// Notify.
        NOTIFY = 41,
        /// Delete.
        DELETE = 42,
        /// Vendor ID.
        VENDOR_ID = 43,
        /// Traffic Selector - Initiator.
        TSi = 44,
        /// Traffic Selector - Responder.
        TSr = 45,
        /// Encrypted and Authenticated.
        SK = 46,
        /// Configuration.
        CP = 47,
        /// Extensible Authentication.
        EAP = 48,
        /// Encrypted and Authenticated Fragment (RFC 7383).
        SKF = 53,
    }
}

impl PayloadType {
    /// Whether this crate parses the payload type (every named one but NONE).
    pub const fn is_known(self) -> bool {
        matches!(self.0, 33..=48 | 53)
    }

    /// Whether this is an Encrypted (SK) or Encrypted Fragment (SKF) payload.
    pub const fn is_encrypted(self) -> bool {
        matches!(self.0, 46 | 53)
    }
}

registry! {
    /// IKEv2 Notify Message Types (RFC 7296 section 3.10.1 and extensions).
    NotifyType(u16) {
        /// A critical payload type was not understood.
        UNSUPPORTED_CRITICAL_PAYLOAD = 1,
        /// A message arrived for an unknown IKE SA.
        INVALID_IKE_SPI = 4,
        /// The IKE major version is not supported.
        INVALID_MAJOR_VERSION = 5,
        /// The message was malformed.
        INVALID_SYNTAX = 7,
        /// The Message ID is outside the window.
        INVALID_MESSAGE_ID = 9,
        /// An ESP or AH packet arrived with an unknown SPI.
        INVALID_SPI = 11,
        /// No proposal was acceptable.
        NO_PROPOSAL_CHOSEN = 14,
        /// The KE payload's group was not the selected one.
        INVALID_KE_PAYLOAD = 17,
        /// Authentication failed.
        AUTHENTICATION_FAILED = 24,
        /// Only one pair of traffic selectors is acceptable.
        SINGLE_PAIR_REQUIRED = 34,
        /// No more Child SAs are accepted on this IKE SA.
        NO_ADDITIONAL_SAS = 35,
        /// No internal address could be assigned.
        INTERNAL_ADDRESS_FAILURE = 36,
        /// A CP payload was required but missing.
        FAILED_CP_REQUIRED = 37,
        /// The traffic selectors are unacceptable.
        TS_UNACCEPTABLE = 38,
        /// A packet's selectors did not match its SA.
        INVALID_SELECTORS = 39,
        /// MOBIKE: the addresses are unacceptable (RFC 4555).
        UNACCEPTABLE_ADDRESSES = 40,
        /// MOBIKE: a NAT was detected where none was allowed (RFC 4555).
        UNEXPECTED_NAT_DETECTED = 41,
        /// The request collided with another; try again later.
        TEMPORARY_FAILURE = 43,
        /// The Child SA to rekey or delete does not exist.
        CHILD_SA_NOT_FOUND = 44,
        /// This is the first IKE SA between these identities.
        INITIAL_CONTACT = 16384,
        /// The sender's window size.
        SET_WINDOW_SIZE = 16385,
        /// More traffic selectors than those accepted could be negotiated.
        ADDITIONAL_TS_POSSIBLE = 16386,
        /// IPComp is supported.
        IPCOMP_SUPPORTED = 16387,
        /// NAT detection: hash of the source address and port.
        NAT_DETECTION_SOURCE_IP = 16388,
        /// NAT detection: hash of the destination address and port.
        NAT_DETECTION_DESTINATION_IP = 16389,
        /// A stateless cookie.
        COOKIE = 16390,
        /// The Child SA should use transport mode.
        USE_TRANSPORT_MODE = 16391,
        /// Hash-and-URL certificate lookup is supported.
        HTTP_CERT_LOOKUP_SUPPORTED = 16392,
        /// This CREATE_CHILD_SA rekeys the Child SA with the given SPI.
        REKEY_SA = 16393,
        /// TFC padding is not supported on the Child SA.
        ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
        /// Non-first fragments are sent on the Child SA too.
        NON_FIRST_FRAGMENTS_ALSO = 16395,
        /// MOBIKE is supported (RFC 4555).
        MOBIKE_SUPPORTED = 16396,
        /// MOBIKE: an additional IPv4 address (RFC 4555).
        ADDITIONAL_IP4_ADDRESS = 16397,
        /// MOBIKE: an additional IPv6 address (RFC 4555).
        ADDITIONAL_IP6_ADDRESS = 16398,
        /// MOBIKE: no additional addresses (RFC 4555).
        NO_ADDITIONAL_ADDRESSES = 16399,
        /// MOBIKE: the IKE SA's addresses changed (RFC 4555).
        UPDATE_SA_ADDRESSES = 16400,
        /// MOBIKE: return routability cookie (RFC 4555).
        COOKIE2 = 16401,
        /// MOBIKE: NATs are not allowed (RFC 4555).
        NO_NATS_ALLOWED = 16402,
        /// IKE fragmentation is supported (RFC 7383).
        IKEV2_FRAGMENTATION_SUPPORTED = 16430,
        /// The hash algorithms accepted for signatures (RFC 7427).
        SIGNATURE_HASH_ALGORITHMS = 16431,
    }
}

impl NotifyType {
    /// Whether this is an error type (0..16383) rather than a status type.
    pub const fn is_error(self) -> bool {
        self.0 < 16384
    }
}

registry! {
    /// IKEv2 Security Protocol Identifiers (RFC 7296 section 3.3.1).
    ProtocolId(u8) {
        /// No SA: the value a Notify without an SPI carries.
        NONE = 0,
        /// The IKE SA.
        IKE = 1,
        /// Authentication Header.
        AH = 2,
        /// Encapsulating Security Payload.
        ESP = 3,
    }
}

registry! {
    /// IKEv2 Transform Types (RFC 7296 section 3.3.2, RFC 9370).
    TransformType(u8) {
        /// Encryption algorithm.
        ENCR = 1,
        /// Pseudo-random function.
        PRF = 2,
        /// Integrity algorithm.
        INTEG = 3,
        /// Diffie-Hellman group (key exchange method).
        DH = 4,
        /// Extended sequence numbers.
        ESN = 5,
        /// Additional key exchange 1 (RFC 9370).
        ADDKE1 = 6,
        /// Additional key exchange 2 (RFC 9370).
        ADDKE2 = 7,
        /// Additional key exchange 3 (RFC 9370).
        ADDKE3 = 8,
        /// Additional key exchange 4 (RFC 9370).
        ADDKE4 = 9,
        /// Additional key exchange 5 (RFC 9370).
        ADDKE5 = 10,
        /// Additional key exchange 6 (RFC 9370).
        ADDKE6 = 11,
        /// Additional key exchange 7 (RFC 9370).
        ADDKE7 = 12,
    }
}

registry! {
    /// IKEv2 Identification Payload ID Types (RFC 7296 section 3.5).
    IdType(u8) {
        /// A single four-octet IPv4 address.
        ID_IPV4_ADDR = 1,
        /// A fully qualified domain name.
        ID_FQDN = 2,
        /// An RFC 822 email address.
        ID_RFC822_ADDR = 3,
        /// A single sixteen-octet IPv6 address.
        ID_IPV6_ADDR = 5,
        /// A DER-encoded X.500 Distinguished Name.
        ID_DER_ASN1_DN = 9,
        /// A DER-encoded X.509 GeneralName.
        ID_DER_ASN1_GN = 10,
        /// An opaque octet string.
        ID_KEY_ID = 11,
        /// No identity: NULL authentication (RFC 7619).
        ID_NULL = 13,
    }
}

registry! {
    /// IKEv2 Authentication Methods (RFC 7296 section 3.8 and extensions).
    AuthMethod(u8) {
        /// RSA digital signature (PKCS #1 v1.5 with SHA-1).
        RSA = 1,
        /// Shared key message integrity code.
        SHARED_KEY_MIC = 2,
        /// DSS digital signature.
        DSS = 3,
        /// ECDSA with SHA-256 on P-256 (RFC 4754).
        ECDSA_256 = 9,
        /// ECDSA with SHA-384 on P-384 (RFC 4754).
        ECDSA_384 = 10,
        /// ECDSA with SHA-512 on P-521 (RFC 4754).
        ECDSA_521 = 11,
        /// NULL authentication (RFC 7619).
        NULL_AUTH = 13,
        /// Digital signature with the algorithm named in the data (RFC 7427).
        DIGITAL_SIGNATURE = 14,
    }
}

registry! {
    /// IKEv2 Certificate Encodings (RFC 7296 section 3.6 and extensions).
    CertEncoding(u8) {
        /// PKCS #7 wrapped X.509 certificate.
        PKCS7_X509 = 1,
        /// PGP certificate.
        PGP = 2,
        /// DNS signed key.
        DNS_SIGNED_KEY = 3,
        /// X.509 certificate - signature.
        X509_SIGNATURE = 4,
        /// Kerberos token.
        KERBEROS_TOKEN = 6,
        /// Certificate revocation list (CRL).
        CRL = 7,
        /// Authority revocation list (ARL).
        ARL = 8,
        /// SPKI certificate.
        SPKI = 9,
        /// X.509 certificate - attribute.
        X509_ATTRIBUTE = 10,
        /// Raw RSA key (deprecated).
        RAW_RSA_KEY = 11,
        /// Hash and URL of an X.509 certificate.
        HASH_AND_URL = 12,
        /// Hash and URL of an X.509 bundle.
        HASH_AND_URL_BUNDLE = 13,
        /// OCSP content (RFC 4806).
        OCSP_CONTENT = 14,
        /// Raw public key (RFC 7670).
        RAW_PUBLIC_KEY = 15,
    }
}

registry! {
    /// IKEv2 Traffic Selector Types (RFC 7296 section 3.13.1, RFC 9478).
    TsType(u8) {
        /// A range of IPv4 addresses.
        TS_IPV4_ADDR_RANGE = 7,
        /// A range of IPv6 addresses.
        TS_IPV6_ADDR_RANGE = 8,
        /// A security label (RFC 9478).
        TS_SECLABEL = 10,
    }
}

registry! {
    /// IKEv2 Configuration Payload CFG Types (RFC 7296 section 3.15).
    CfgType(u8) {
        /// A request for configuration.
        CFG_REQUEST = 1,
        /// The reply to a request.
        CFG_REPLY = 2,
        /// Configuration set unsolicited.
        CFG_SET = 3,
        /// Acknowledgement of a CFG_SET.
        CFG_ACK = 4,
    }
}

registry! {
    /// IKEv2 Configuration Payload Attribute Types, 15 bits (RFC 7296
    /// section 3.15.1, RFC 8598).
    CfgAttrType(u16) {
        /// An internal IPv4 address.
        INTERNAL_IP4_ADDRESS = 1,
        /// The internal IPv4 network's netmask.
        INTERNAL_IP4_NETMASK = 2,
        /// An IPv4 DNS server.
        INTERNAL_IP4_DNS = 3,
        /// An IPv4 NetBIOS name server.
        INTERNAL_IP4_NBNS = 4,
        /// An IPv4 DHCP server.
        INTERNAL_IP4_DHCP = 6,
        /// The application version string.
        APPLICATION_VERSION = 7,
        /// An internal IPv6 address and prefix length.
        INTERNAL_IP6_ADDRESS = 8,
        /// An IPv6 DNS server.
        INTERNAL_IP6_DNS = 10,
        /// An IPv6 DHCP server.
        INTERNAL_IP6_DHCP = 12,
        /// A protected IPv4 subnet.
        INTERNAL_IP4_SUBNET = 13,
        /// The attribute types the sender supports.
        SUPPORTED_ATTRIBUTES = 14,
        /// A protected IPv6 subnet.
        INTERNAL_IP6_SUBNET = 15,
        /// An internal DNS domain (RFC 8598).
        INTERNAL_DNS_DOMAIN = 25,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_the_name_of_known_values() {
        assert_eq!(format!("{:?}", ExchangeType::IKE_SA_INIT), "IKE_SA_INIT");
        assert_eq!(format!("{:?}", PayloadType::IDi), "IDi");
        assert_eq!(format!("{}", NotifyType::NAT_DETECTION_SOURCE_IP), "NAT_DETECTION_SOURCE_IP");
        assert_eq!(format!("{:?}", CfgAttrType::INTERNAL_IP6_DNS), "INTERNAL_IP6_DNS");
    }

    #[test]
    fn debug_prints_the_type_and_number_of_unknown_values() {
        assert_eq!(format!("{:?}", ExchangeType(99)), "ExchangeType(99)");
        assert_eq!(format!("{:?}", NotifyType(40000)), "NotifyType(40000)");
        assert_eq!(ProtocolId(200).name(), None);
    }

    #[test]
    fn round_trips_unknown_values_through_the_integer() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(PayloadType::from(v)), v);
        }
        assert_eq!(u16::from(NotifyType::from(12345)), 12345);
    }

    #[test]
    fn names_follow_the_iana_values() {
        assert_eq!(PayloadType::SKF.0, 53);
        assert_eq!(NotifyType::COOKIE.0, 16390);
        assert_eq!(NotifyType::SIGNATURE_HASH_ALGORITHMS.0, 16431);
        assert_eq!(AuthMethod::DIGITAL_SIGNATURE.0, 14);
        assert_eq!(TsType::TS_IPV6_ADDR_RANGE.0, 8);
    }

    #[test]
    fn notify_types_below_16384_are_errors() {
        assert!(NotifyType::INVALID_SYNTAX.is_error());
        assert!(NotifyType(16383).is_error());
        assert!(!NotifyType::INITIAL_CONTACT.is_error());
    }

    #[test]
    fn known_payload_types_are_the_named_ones_but_none() {
        let named: Vec<u8> = (0..=u8::MAX).filter(|&v| PayloadType(v).name().is_some()).collect();
        let known: Vec<u8> = (0..=u8::MAX).filter(|&v| PayloadType(v).is_known()).collect();
        assert_eq!(named.get(1..), Some(known.as_slice()));
        assert_eq!(named.first(), Some(&0));
    }
}
