//! IKE identities as swanctl.conf writes them.

use super::value::deserialize_parsed;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;
use serde::{Deserialize, Deserializer};

/// An IKE identity (RFC 7296 section 3.5), or `%any`.
///
/// Parsed as strongSwan does: `%any`; `@#` and hex digits for a key ID;
/// `@name` for a host name (even one that looks like an address); an IP
/// address; a string with `=` for a distinguished name (`C=CH, O=Example,
/// CN=gw.example.com`); a string with `@` for an e-mail address; anything
/// else is a host name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum IdSpec {
    /// `%any`: any identity (only where a pattern is allowed).
    Any,
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_IPV6_ADDR.
    Ipv6(Ipv6Addr),
    /// ID_FQDN.
    Fqdn(String),
    /// ID_RFC822_ADDR.
    Email(String),
    /// ID_DER_ASN1_DN, as its RFC 4514-style string; encoded to DER when
    /// used.
    Dn(String),
    /// ID_KEY_ID.
    KeyId(Vec<u8>),
}

impl IdSpec {
    /// Whether `other` is this identity: `%any` matches everything, host
    /// names and e-mail addresses compare without regard to ASCII case.
    pub(crate) fn matches(&self, other: &IdSpec) -> bool {
        match (self, other) {
            (Self::Any, _) | (_, Self::Any) => true,
            (Self::Fqdn(a), Self::Fqdn(b)) | (Self::Email(a), Self::Email(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }

    /// The identity of an address.
    pub(crate) fn from_ip(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => Self::Ipv4(a),
            IpAddr::V6(a) => Self::Ipv6(a),
        }
    }
}

impl FromStr for IdSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("an identity cannot be empty".to_owned());
        }
        if s == "%any" {
            return Ok(Self::Any);
        }
        if let Some(hex_digits) = s.strip_prefix("@#") {
            return match hex::decode(hex_digits) {
                Ok(id) if !id.is_empty() => Ok(Self::KeyId(id)),
                _ => Err(format!(
                    "identity {s:?}: a key ID is \"@#\" followed by an even number of hex digits"
                )),
            };
        }
        if let Some(name) = s.strip_prefix('@') {
            if name.is_empty() {
                return Err("identity \"@\": a host name must follow the '@'".to_owned());
            }
            return Ok(Self::Fqdn(name.to_owned()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::from_ip(ip));
        }
        if s.contains('=') {
            let rdn_ok = |rdn: &str| {
                rdn.split_once('=').is_some_and(|(attr, _)| {
                    let attr = attr.trim();
                    !attr.is_empty() && attr.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
                })
            };
            if !s.split([',', '/']).filter(|r| !r.trim().is_empty()).all(rdn_ok) {
                return Err(format!(
                    "identity {s:?}: a distinguished name is a list of ATTRIBUTE=value, as in \"C=CH, O=Example, CN=gw\""
                ));
            }
            return Ok(Self::Dn(s.to_owned()));
        }
        if s.contains('@') {
            return Ok(Self::Email(s.to_owned()));
        }
        Ok(Self::Fqdn(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for IdSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(
            d,
            r#"an identity such as "gw.example.com", "user@example.com", "192.0.2.1" or "%any""#,
        )
    }
}

impl fmt::Display for IdSpec {
    /// The form [`FromStr`] reads back as the same identity.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("%any"),
            Self::Ipv4(a) => write!(f, "{a}"),
            Self::Ipv6(a) => write!(f, "{a}"),
            Self::Fqdn(n) => {
                let plain = n.parse::<IdSpec>().is_ok_and(|id| id == Self::Fqdn(n.clone()));
                if plain { f.write_str(n) } else { write!(f, "@{n}") }
            }
            Self::Email(e) | Self::Dn(e) => f.write_str(e),
            Self::KeyId(k) => write!(f, "@#{}", hex::encode(k)),
        }
    }
}

impl fmt::Debug for IdSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdSpec({self})")
    }
}
