//! Scalar values of the configuration file: durations, one-or-many lists,
//! secrets, and the serde glue for values parsed from strings.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Range;
use core::str::FromStr;
use core::time::Duration;
use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, SeqAccess, Visitor};
use tandem_crypto::secret::SecretBytes;
use toml::Spanned;
use zeroize::Zeroizing;

/// Deserializes a `T` from a string through its `FromStr`, whose error
/// message becomes the deserialization error.
pub(super) fn deserialize_parsed<'de, D, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = String>,
{
    struct V<T>(&'static str, PhantomData<T>);
    impl<T: FromStr<Err = String>> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            s.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, PhantomData))
}

/// A value that may be written as one string or as an array of them, as
/// swanctl.conf's comma-separated lists are: `"a"` or `["a", "b"]`.
///
/// Each item keeps its span; a lone string's span is the value's.
#[derive(Debug)]
pub(super) struct List<T> {
    /// The span of the whole value.
    pub(super) span: Range<usize>,
    /// The items, in order.
    pub(super) items: Vec<Spanned<T>>,
}

/// A lone item or an array, before the lone item gets its span.
enum OneOrMany<T> {
    /// `key = "value"`.
    One(T),
    /// `key = ["value", ...]`.
    Many(Vec<Spanned<T>>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                T::deserialize(s.into_deserializer()).map(OneOrMany::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<T>>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Spanned::<OneOrMany<T>>::deserialize(d)?;
        let span = value.span();
        let items = match value.into_inner() {
            OneOrMany::One(item) => vec![Spanned::new(span.clone(), item)],
            OneOrMany::Many(items) => items,
        };
        Ok(Self { span, items })
    }
}

/// The longest duration accepted: ten years, far from `Instant` overflow.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// A duration: `"30s"`, `"10m"`, `"4h"`, `"1d"`, `"45"` or `45` (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Secs(pub(super) Duration);

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Secs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration such as "30s", "10m", "4h", "1d", or a number of seconds"#)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secs, E> {
                let secs = u64::try_from(v).map_err(|_| E::custom("a duration cannot be negative"))?;
                self.visit_u64(secs)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secs, E> {
                let d = Duration::from_secs(v);
                if d > MAX_DURATION {
                    return Err(E::custom(too_long(&v.to_string())));
                }
                Ok(Secs(d))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Secs, E> {
                parse_duration(s).map(Secs).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration that may also be written in milliseconds: everything
/// [`Secs`] accepts, and `"100ms"`. For the cluster's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Millis(pub(super) Duration);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration such as "100ms", "2s", "1m", or a number of seconds"#)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
                Secs::deserialize(v.into_deserializer()).map(|s| Millis(s.0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
                Secs::deserialize(v.into_deserializer()).map(|s| Millis(s.0))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Millis, E> {
                parse_duration_ms(s).map(Millis).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a duration like [`parse_duration`], also accepting a number of
/// milliseconds with the unit `ms` (`"100ms"`).
pub(super) fn parse_duration_ms(s: &str) -> Result<Duration, String> {
    let Some(digits) = s.trim().strip_suffix("ms") else { return parse_duration(s) };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            r#"invalid duration {s:?}: write a number with ms, s, m, h or d ("100ms", "30s", "10m")"#
        ));
    }
    digits
        .parse::<u64>()
        .ok()
        .map(Duration::from_millis)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| too_long(s))
}

/// A duration as [`format_duration`] shows it, or in milliseconds if it is
/// not a whole number of seconds; [`parse_duration_ms`] reads it back.
pub(crate) fn format_duration_ms(d: Duration) -> String {
    if d.subsec_nanos() == 0 { format_duration(d) } else { format!("{}ms", d.as_millis()) }
}

/// The message for a duration over [`MAX_DURATION`].
fn too_long(s: &str) -> String {
    format!("duration {s:?} is longer than the maximum of 3650d")
}

/// Parses a strongSwan-style duration: digits, then optionally `s`, `m`,
/// `h` or `d` (seconds without a unit).
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (digits, unit) = match t.as_bytes().last() {
        Some(b's') => (&t[..t.len() - 1], 1),
        Some(b'm') => (&t[..t.len() - 1], 60),
        Some(b'h') => (&t[..t.len() - 1], 3600),
        Some(b'd') => (&t[..t.len() - 1], 86_400),
        _ => (t, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            r#"invalid duration {s:?}: write a number of seconds, or a number with s, m, h or d ("30s", "10m", "4h", "1d")"#
        ));
    }
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .map(Duration::from_secs)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| too_long(s))?;
    Ok(secs)
}

/// A duration in the largest unit that shows it exactly (`4h`, `90s`);
/// [`parse_duration`] reads it back.
pub(crate) fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_owned(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A secret as written in the file; zeroized when dropped, never printed.
pub(super) struct RawSecret(pub(super) Zeroizing<String>);

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawSecret(..)")
    }
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        /// Refuses a non-string without echoing it: it may be the secret.
        fn not_a_string<E: de::Error>() -> E {
            E::custom("a secret must be a string (put it in quotes)")
        }
        impl Visitor<'_> for V {
            type Value = RawSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawSecret, E> {
                Ok(RawSecret(Zeroizing::new(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<RawSecret, E> {
                Ok(RawSecret(Zeroizing::new(s)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawSecret, E> {
                Err(not_a_string())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawSecret, E> {
                Err(not_a_string())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawSecret, E> {
                Err(not_a_string())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawSecret, E> {
                Err(not_a_string())
            }
        }
        d.deserialize_string(V)
    }
}

/// Decodes a secret the way swanctl.conf writes them: `0x` and hex digits,
/// `0s` and base64, or else the string's own UTF-8 bytes. Errors never
/// contain the secret.
pub(super) fn decode_secret(s: &str) -> Result<SecretBytes, String> {
    let bytes = if let Some(hex_digits) = s.strip_prefix("0x") {
        hex::decode(hex_digits).map_err(|_| "invalid hex after \"0x\"".to_owned())?
    } else if let Some(b64) = s.strip_prefix("0s") {
        base64_decode(b64).ok_or_else(|| "invalid base64 after \"0s\"".to_owned())?
    } else {
        s.as_bytes().to_vec()
    };
    if bytes.is_empty() {
        return Err("the secret is empty".to_owned());
    }
    Ok(SecretBytes::new(bytes))
}

/// Standard base64 (RFC 4648 section 4), padding optional; `None` if not
/// valid.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A single leftover character (6 bits) cannot end a valid encoding.
    (bits < 6).then_some(out)
}
