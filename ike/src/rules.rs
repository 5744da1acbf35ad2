//! Which payloads each message may carry, how many, and where (RFC 7296
//! sections 1.2-1.5, 2.16, 2.19, 2.21 and 3; RFC 7383 section 2.5).
//!
//! Every (exchange, request/response) pair has a row in one table: its
//! [`Placement`] (IKE_SA_INIT travels in the clear, every later exchange
//! inside a single SK or SKF payload) and one or more [`Shape`]s, each
//! listing for every payload type it admits how often that type
//! [`Occurs`]. A message is valid when it satisfies the placement and at
//! least one shape. [`check`] runs once per message, after the SK payload
//! was opened and before any state handling, so a state never sees a
//! missing, repeated or misplaced payload; a violation is an
//! [`Error::InvalidSyntax`] naming the rule ("IKE_AUTH request without
//! IDi"), to answer with INVALID_SYNTAX.
//!
//! Decisions the RFCs leave to the reader:
//! - Notify and Vendor ID are admitted any number of times in every shape
//!   (sections 3.10 and 3.12 let them ride on any message), but, like every
//!   payload after IKE_SA_INIT, only inside SK.
//! - Any other known payload type a shape does not list is a violation,
//!   even one the exchange has no use for at all (a Delete in IKE_AUTH).
//! - Payload types this crate does not know were non-critical (the parser
//!   refuses critical ones) and are skipped as section 2.5 asks: [`check`]
//!   ignores them wherever they sit, and [`types`] leaves them out.
//! - A response may be only Notify payloads (and Vendor IDs) where the
//!   responder refuses the request: IKE_SA_INIT (COOKIE, INVALID_KE_PAYLOAD,
//!   NO_PROPOSAL_CHOSEN), IKE_AUTH (AUTHENTICATION_FAILED...) and
//!   CREATE_CHILD_SA (NO_PROPOSAL_CHOSEN, TEMPORARY_FAILURE...). The table
//!   checks payload types only: which Notify types a refusal carries is the
//!   state's business.
//! - The three IKE_AUTH messages of EAP (section 2.16) and the EAP-only
//!   first response of RFC 5998 are shapes of their own, so the check needs
//!   no state. In IKE_AUTH, SA, TSi and TSr come all or none (none when the
//!   Child SA failed, section 2.21.2, or when the IKE SA is childless, RFC
//!   6023); in CREATE_CHILD_SA, TSi and TSr come both or none (none when
//!   rekeying the IKE SA). Whether a CREATE_CHILD_SA must carry KE depends
//!   on what it negotiates and is left to the state.
//! - CP is admitted once in IKE_AUTH and CREATE_CHILD_SA (section 2.19
//!   allows it in any request creating a Child SA) and any number of times
//!   in INFORMATIONAL (CFG_SET and CFG_ACK).
//! - No standard exchange puts payloads in front of SK, so after
//!   IKE_SA_INIT the SK or SKF payload must be the only known outer one;
//!   an unprotected Notify outside any IKE SA (section 1.5) is not an
//!   exchange and is not judged here.
//! - Exchange types outside RFC 7296 (IKE_SESSION_RESUME,
//!   IKE_INTERMEDIATE...) are not implemented and fail as invalid syntax.
//!
//! The first shape of a row is its main one: when no shape fits, the error
//! names the main shape's first broken rule.

use crate::Error;
use crate::wire::{ExchangeType, Payload, PayloadType};

/// How many times a payload type may appear in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Occurs {
    /// Not at all.
    Never,
    /// At most once (`[X]` in RFC 7296 notation).
    Optional,
    /// Exactly once.
    Once,
    /// Any number of times, none included.
    Any,
    /// At least once.
    AtLeastOnce,
}

impl Occurs {
    /// The fewest occurrences allowed.
    pub const fn min(self) -> usize {
        match self {
            Self::Never | Self::Optional | Self::Any => 0,
            Self::Once | Self::AtLeastOnce => 1,
        }
    }

    /// The most occurrences allowed, `None` for no limit.
    pub const fn max(self) -> Option<usize> {
        match self {
            Self::Never => Some(0),
            Self::Optional | Self::Once => Some(1),
            Self::Any | Self::AtLeastOnce => None,
        }
    }

    /// Whether `n` occurrences are allowed.
    pub const fn admits(self, n: usize) -> bool {
        n >= self.min()
            && match self.max() {
                Some(max) => n <= max,
                None => true,
            }
    }
}

/// Where the payloads of an exchange's messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Placement {
    /// In the clear, with no SK or SKF payload (IKE_SA_INIT).
    Clear,
    /// Inside the message's single SK or SKF payload, the only known outer
    /// payload (every exchange after IKE_SA_INIT).
    Encrypted,
}

/// One payload type of a shape, with its error messages.
#[derive(Clone, Copy, Debug)]
struct Rule {
    /// The payload type.
    ty: PayloadType,
    /// How often it may appear.
    occurs: Occurs,
    /// The error when it appears too rarely.
    missing: &'static str,
    /// The error when it appears too often.
    repeated: &'static str,
}

/// Payload types that come all together or not at all.
#[derive(Clone, Copy, Debug)]
struct Group {
    /// The members.
    members: &'static [PayloadType],
    /// The error when some but not all are present.
    broken: &'static str,
}

/// One admissible form of a message: which payload types, how many of each.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// What the message is, for errors ("IKE_AUTH request").
    name: &'static str,
    /// The admitted payload types; any other known type is unexpected.
    rules: &'static [Rule],
    /// Payload types that come together or not at all.
    groups: &'static [Group],
    /// The error naming an unexpected payload type.
    unexpected: fn(PayloadType) -> &'static str,
}

impl Shape {
    /// What the message is ("IKE_AUTH request during EAP").
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How often `ty` may appear in this shape ([`Occurs::Never`] if unlisted).
    pub fn occurs(&self, ty: PayloadType) -> Occurs {
        self.rules.iter().find(|r| r.ty == ty).map_or(Occurs::Never, |r| r.occurs)
    }

    /// The sets of payload types that must come all together or not at all.
    pub fn groups(&self) -> impl Iterator<Item = &'static [PayloadType]> + use<> {
        self.groups.iter().map(|g| g.members)
    }

    /// Checks the counted payload types against this shape.
    fn check(&self, counts: &Counts) -> Result<(), Error> {
        if let Some(ty) = counts.present().find(|&ty| self.occurs(ty) == Occurs::Never) {
            return Err(Error::InvalidSyntax((self.unexpected)(ty)));
        }
        for rule in self.rules {
            let n = counts.get(rule.ty);
            if n < rule.occurs.min() {
                return Err(Error::InvalidSyntax(rule.missing));
            }
            if !rule.occurs.admits(n) {
                return Err(Error::InvalidSyntax(rule.repeated));
            }
        }
        for group in self.groups {
            let present = group.members.iter().filter(|&&ty| counts.get(ty) > 0).count();
            if present != 0 && present != group.members.len() {
                return Err(Error::InvalidSyntax(group.broken));
            }
        }
        Ok(())
    }
}

/// The row of one message kind: an exchange's request or response.
#[derive(Clone, Copy, Debug)]
struct MessageRules {
    /// Where its payloads travel.
    placement: Placement,
    /// Its shapes, the main one first.
    shapes: &'static [Shape],
    /// Clear placement: an SK or SKF payload, or payloads said to be inside one.
    encrypted: &'static str,
    /// Encrypted placement: no SK or SKF payload.
    unencrypted: &'static str,
    /// Encrypted placement: a known payload beside SK.
    outside: &'static str,
    /// Encrypted placement: more than one SK or SKF payload.
    doubled: &'static str,
}

impl MessageRules {
    /// Checks the placement; returns the payload types the shapes judge.
    fn body<'p>(
        &self,
        outer: &'p [PayloadType],
        inner: &'p [PayloadType],
    ) -> Result<&'p [PayloadType], Error> {
        match self.placement {
            Placement::Clear => {
                if outer.iter().any(|ty| ty.is_encrypted()) || inner.iter().any(|ty| ty.is_known()) {
                    return Err(Error::InvalidSyntax(self.encrypted));
                }
                Ok(outer)
            }
            Placement::Encrypted => {
                let known = || outer.iter().filter(|ty| ty.is_known());
                match known().filter(|ty| ty.is_encrypted()).count() {
                    0 => Err(Error::InvalidSyntax(self.unencrypted)),
                    _ if known().any(|ty| !ty.is_encrypted()) => Err(Error::InvalidSyntax(self.outside)),
                    1 => Ok(inner),
                    _ => Err(Error::InvalidSyntax(self.doubled)),
                }
            }
        }
    }
}

/// How many payloads of each known type a message carries.
struct Counts([usize; 256]);

impl Counts {
    /// Counts the known types of `types`; unknown ones are skipped.
    fn of(types: &[PayloadType]) -> Self {
        let mut counts = [0_usize; 256];
        for ty in types.iter().filter(|ty| ty.is_known()) {
            let slot = &mut counts[usize::from(ty.0)];
            *slot = slot.saturating_add(1);
        }
        Self(counts)
    }

    /// How many payloads of type `ty`.
    fn get(&self, ty: PayloadType) -> usize {
        self.0[usize::from(ty.0)]
    }

    /// The types present, in numeric order.
    fn present(&self) -> impl Iterator<Item = PayloadType> + '_ {
        (0..=u8::MAX).map(PayloadType).filter(|&ty| self.get(ty) > 0)
    }
}

/// The error naming an unexpected payload type, for a shape called `$name`.
macro_rules! unexpected {
    ($name:literal) => {
        unexpected!(@ $name; SA KE IDi IDr CERT CERTREQ AUTH NONCE NOTIFY DELETE VENDOR_ID TSi TSr SK CP EAP SKF)
    };
    (@ $name:literal; $($ty:ident)*) => {
        |ty: PayloadType| match ty {
            $(PayloadType::$ty => concat!($name, " with unexpected ", stringify!($ty)),)*
            _ => concat!($name, " with an unexpected payload"),
        }
    };
}

/// A [`Shape`] called `$name`: `TYPE: Occurs` entries, then groups that
/// come all or none.
macro_rules! shape {
    ($name:literal { $($ty:ident: $occurs:ident),* $(,)? } $(together [$($member:ident),+])*) => {
        Shape {
            name: $name,
            rules: &[$(Rule {
                ty: PayloadType::$ty,
                occurs: Occurs::$occurs,
                missing: concat!($name, " without ", stringify!($ty)),
                repeated: concat!($name, " with more than one ", stringify!($ty)),
            }),*],
            groups: &[$(Group {
                members: &[$(PayloadType::$member),+],
                broken: concat!($name, " with some but not all of ", stringify!($($member),+)),
            }),*],
            unexpected: unexpected!($name),
        }
    };
}

/// A [`MessageRules`] row called `$name`.
macro_rules! message {
    ($name:literal, $placement:ident, $($shape:expr),+ $(,)?) => {
        MessageRules {
            placement: Placement::$placement,
            shapes: &[$($shape),+],
            encrypted: concat!($name, " with an Encrypted payload"),
            unencrypted: concat!($name, " without an Encrypted payload"),
            outside: concat!($name, " with a payload outside SK"),
            doubled: concat!($name, " with more than one Encrypted payload"),
        }
    };
}

/// IKE_SA_INIT request (section 1.2; a retry adds N(COOKIE)).
static IKE_SA_INIT_REQUEST: MessageRules = message! {
    "IKE_SA_INIT request", Clear,
    shape!("IKE_SA_INIT request" {
        SA: Once, KE: Once, NONCE: Once, CERTREQ: Any, NOTIFY: Any, VENDOR_ID: Any,
    }),
};

/// IKE_SA_INIT response (section 1.2), or a refusal (sections 1.2, 2.6).
static IKE_SA_INIT_RESPONSE: MessageRules = message! {
    "IKE_SA_INIT response", Clear,
    shape!("IKE_SA_INIT response" {
        SA: Once, KE: Once, NONCE: Once, CERTREQ: Any, NOTIFY: Any, VENDOR_ID: Any,
    }),
    shape!("IKE_SA_INIT refusal" { NOTIFY: AtLeastOnce, VENDOR_ID: Any }),
};

/// IKE_AUTH request (section 1.2), and the later ones of EAP (2.16).
static IKE_AUTH_REQUEST: MessageRules = message! {
    "IKE_AUTH request", Encrypted,
    shape!("IKE_AUTH request" {
        IDi: Once, CERT: Any, CERTREQ: Any, IDr: Optional, AUTH: Optional, EAP: Optional,
        CP: Optional, SA: Optional, TSi: Optional, TSr: Optional, NOTIFY: Any, VENDOR_ID: Any,
    } together [SA, TSi, TSr]),
    shape!("IKE_AUTH request during EAP" { EAP: Once, NOTIFY: Any, VENDOR_ID: Any }),
    shape!("IKE_AUTH request closing EAP" { AUTH: Once, NOTIFY: Any, VENDOR_ID: Any }),
};

/// IKE_AUTH response (section 1.2), those of EAP (2.16, RFC 5998) or a
/// refusal (2.21.2).
static IKE_AUTH_RESPONSE: MessageRules = message! {
    "IKE_AUTH response", Encrypted,
    shape!("IKE_AUTH response" {
        IDr: Once, CERT: Any, AUTH: Once, EAP: Optional,
        CP: Optional, SA: Optional, TSi: Optional, TSr: Optional, NOTIFY: Any, VENDOR_ID: Any,
    } together [SA, TSi, TSr]),
    shape!("IKE_AUTH response starting EAP-only" { IDr: Once, EAP: Once, NOTIFY: Any, VENDOR_ID: Any }),
    shape!("IKE_AUTH response during EAP" { EAP: Once, NOTIFY: Any, VENDOR_ID: Any }),
    shape!("IKE_AUTH response closing EAP" {
        AUTH: Once, CP: Optional, SA: Optional, TSi: Optional, TSr: Optional, NOTIFY: Any, VENDOR_ID: Any,
    } together [SA, TSi, TSr]),
    shape!("IKE_AUTH refusal" { NOTIFY: AtLeastOnce, VENDOR_ID: Any }),
};

/// CREATE_CHILD_SA request (sections 1.3.1-1.3.3).
static CREATE_CHILD_SA_REQUEST: MessageRules = message! {
    "CREATE_CHILD_SA request", Encrypted,
    shape!("CREATE_CHILD_SA request" {
        SA: Once, NONCE: Once, KE: Optional, TSi: Optional, TSr: Optional, CP: Optional,
        NOTIFY: Any, VENDOR_ID: Any,
    } together [TSi, TSr]),
};

/// CREATE_CHILD_SA response (sections 1.3.1-1.3.3) or a refusal (1.3, 2.21.3).
static CREATE_CHILD_SA_RESPONSE: MessageRules = message! {
    "CREATE_CHILD_SA response", Encrypted,
    shape!("CREATE_CHILD_SA response" {
        SA: Once, NONCE: Once, KE: Optional, TSi: Optional, TSr: Optional, CP: Optional,
        NOTIFY: Any, VENDOR_ID: Any,
    } together [TSi, TSr]),
    shape!("CREATE_CHILD_SA refusal" { NOTIFY: AtLeastOnce, VENDOR_ID: Any }),
};

/// INFORMATIONAL request (section 1.4); empty for a liveness check.
static INFORMATIONAL_REQUEST: MessageRules = message! {
    "INFORMATIONAL request", Encrypted,
    shape!("INFORMATIONAL request" { NOTIFY: Any, DELETE: Any, CP: Any, VENDOR_ID: Any }),
};

/// INFORMATIONAL response (section 1.4); may be empty.
static INFORMATIONAL_RESPONSE: MessageRules = message! {
    "INFORMATIONAL response", Encrypted,
    shape!("INFORMATIONAL response" { NOTIFY: Any, DELETE: Any, CP: Any, VENDOR_ID: Any }),
};

/// The row for an exchange's request or response.
fn row(exchange: ExchangeType, response: bool) -> Result<&'static MessageRules, Error> {
    Ok(match (exchange, response) {
        (ExchangeType::IKE_SA_INIT, false) => &IKE_SA_INIT_REQUEST,
        (ExchangeType::IKE_SA_INIT, true) => &IKE_SA_INIT_RESPONSE,
        (ExchangeType::IKE_AUTH, false) => &IKE_AUTH_REQUEST,
        (ExchangeType::IKE_AUTH, true) => &IKE_AUTH_RESPONSE,
        (ExchangeType::CREATE_CHILD_SA, false) => &CREATE_CHILD_SA_REQUEST,
        (ExchangeType::CREATE_CHILD_SA, true) => &CREATE_CHILD_SA_RESPONSE,
        (ExchangeType::INFORMATIONAL, false) => &INFORMATIONAL_REQUEST,
        (ExchangeType::INFORMATIONAL, true) => &INFORMATIONAL_RESPONSE,
        _ => return Err(Error::InvalidSyntax("unknown exchange type")),
    })
}

/// Where the payloads of `exchange` travel; unknown exchanges are an error.
pub fn placement(exchange: ExchangeType) -> Result<Placement, Error> {
    row(exchange, false).map(|r| r.placement)
}

/// The shapes a request or response of `exchange` may take, the main one
/// first; unknown exchanges are an error.
pub fn shapes(exchange: ExchangeType, response: bool) -> Result<&'static [Shape], Error> {
    row(exchange, response).map(|r| r.shapes)
}

/// Checks a message's payload types against the table.
///
/// `outer` are the types of [`Message::payloads`](crate::wire::Message)
/// (SK or SKF included), `inner` those decrypted from SK (empty for
/// IKE_SA_INIT). Types this crate does not know are ignored. Fails with
/// [`Error::InvalidSyntax`] naming the broken rule.
pub fn check(
    exchange: ExchangeType,
    response: bool,
    outer: &[PayloadType],
    inner: &[PayloadType],
) -> Result<(), Error> {
    let row = row(exchange, response)?;
    let counts = Counts::of(row.body(outer, inner)?);
    let mut verdicts = row.shapes.iter().map(|shape| shape.check(&counts));
    let main = verdicts.next().unwrap_or(Err(Error::InvalidSyntax("no payload rules")));
    if main.is_ok() || verdicts.any(|v| v.is_ok()) { Ok(()) } else { main }
}

/// The known payload types of `payloads`, in order: what [`check`] takes.
pub fn types(payloads: &[Payload<'_>]) -> Vec<PayloadType> {
    payloads.iter().map(Payload::ty).filter(|ty| ty.is_known()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXCHANGES: [ExchangeType; 4] = [
        ExchangeType::IKE_SA_INIT,
        ExchangeType::IKE_AUTH,
        ExchangeType::CREATE_CHILD_SA,
        ExchangeType::INFORMATIONAL,
    ];

    /// Every row, with its exchange and direction.
    fn rows() -> impl Iterator<Item = (ExchangeType, bool, &'static MessageRules)> {
        EXCHANGES.into_iter().flat_map(|x| {
            [false, true].into_iter().filter_map(move |resp| row(x, resp).ok().map(|r| (x, resp, r)))
        })
    }

    #[test]
    fn every_exchange_has_a_row_with_a_main_shape_named_after_it() {
        assert_eq!(rows().count(), 8);
        for (x, resp, row) in rows() {
            let name = format!("{x} {}", if resp { "response" } else { "request" });
            assert_eq!(row.shapes.first().map(Shape::name), Some(name.as_str()));
            assert!(row.encrypted.starts_with(&name) && row.outside.starts_with(&name));
        }
    }

    #[test]
    fn shapes_list_each_type_once_and_only_known_inner_types() {
        for (_, _, row) in rows() {
            for shape in row.shapes {
                for (i, rule) in shape.rules.iter().enumerate() {
                    assert!(rule.ty.is_known() && !rule.ty.is_encrypted(), "{}: {:?}", shape.name, rule.ty);
                    assert_ne!(rule.occurs, Occurs::Never, "{}: {:?}", shape.name, rule.ty);
                    assert!(shape.rules.iter().skip(i + 1).all(|r| r.ty != rule.ty), "{}", shape.name);
                }
            }
        }
    }

    #[test]
    fn group_members_are_optional_in_their_shape() {
        for (_, _, row) in rows() {
            for shape in row.shapes {
                for ty in shape.groups().flatten() {
                    assert_eq!(shape.occurs(*ty), Occurs::Optional, "{}: {ty:?}", shape.name);
                }
            }
        }
    }

    #[test]
    fn notify_and_vendor_id_are_admitted_by_every_shape() {
        for (_, _, row) in rows() {
            for shape in row.shapes {
                assert!(shape.occurs(PayloadType::NOTIFY).admits(5), "{}", shape.name);
                assert!(shape.occurs(PayloadType::VENDOR_ID).admits(5), "{}", shape.name);
            }
        }
    }

    #[test]
    fn messages_name_the_shape_the_payload_and_the_rule() {
        let shape = &IKE_AUTH_REQUEST.shapes[0];
        assert_eq!((shape.unexpected)(PayloadType::DELETE), "IKE_AUTH request with unexpected DELETE");
        assert_eq!((shape.unexpected)(PayloadType(99)), "IKE_AUTH request with an unexpected payload");
        assert_eq!(shape.rules[0].missing, "IKE_AUTH request without IDi");
        assert_eq!(shape.rules[0].repeated, "IKE_AUTH request with more than one IDi");
        assert_eq!(shape.groups[0].broken, "IKE_AUTH request with some but not all of SA, TSi, TSr");
        assert_eq!(IKE_SA_INIT_REQUEST.encrypted, "IKE_SA_INIT request with an Encrypted payload");
    }

    #[test]
    fn occurs_bounds_match_their_names() {
        let cases = [
            (Occurs::Never, [true, false, false]),
            (Occurs::Optional, [true, true, false]),
            (Occurs::Once, [false, true, false]),
            (Occurs::Any, [true, true, true]),
            (Occurs::AtLeastOnce, [false, true, true]),
        ];
        for (occurs, admits) in cases {
            assert_eq!([0, 1, 2].map(|n| occurs.admits(n)), admits, "{occurs:?}");
        }
    }

    #[test]
    fn counts_skip_unknown_types() {
        let counts =
            Counts::of(&[PayloadType::NOTIFY, PayloadType(99), PayloadType::NONE, PayloadType::NOTIFY]);
        assert_eq!(counts.get(PayloadType::NOTIFY), 2);
        assert_eq!(counts.present().collect::<Vec<_>>(), [PayloadType::NOTIFY]);
    }

    #[test]
    fn rejects_unknown_exchange_types() {
        for x in (0..=u8::MAX).map(ExchangeType).filter(|x| !EXCHANGES.contains(x)) {
            assert_eq!(check(x, false, &[], &[]), Err(Error::InvalidSyntax("unknown exchange type")));
            assert!(placement(x).is_err() && shapes(x, true).is_err());
        }
    }
}
