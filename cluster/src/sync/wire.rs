//! The sync datagram framing: a fixed header (authenticated, in clear) and
//! a sealed body holding one typed message as TLV fields.
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +---------------------------------------------------------------+
//! |                        magic "TSYN"                           |  0
//! +---------------+---------------+---------------+---------------+
//! |    version    |  header len   |  sender node  | receiver node |  4
//! +---------------+---------------+---------------+---------------+
//! |             flags             |           reserved            |  8
//! +-------------------------------+-------------------------------+
//! |                         cluster id                            | 12
//! +---------------------------------------------------------------+
//! |                     sender epoch (u64)                        | 16
//! +---------------------------------------------------------------+
//! |              packet number (u64, the AEAD nonce)              | 24
//! +---------------------------------------------------------------+
//! |           message sequence number (u64, 0 = ack only)         | 32
//! +---------------------------------------------------------------+
//! |   ack epoch (u64: the receiver's epoch being acked, 0 = none) | 40
//! +---------------------------------------------------------------+
//! |   ack next (u64: every message below it was received)         | 48
//! +---------------------------------------------------------------+
//! |   ack bits (u64: bit i = message ack_next + 1 + i received)   | 56
//! +---------------------------------------------------------------+
//! |   header extension (header len - 64 octets, later versions)   | 64
//! +---------------------------------------------------------------+
//! |   sealed body: kind (u16), then fields (type u16, len u16,    |
//! |   value), unknown field types skipped                         |
//! +---------------------------------------------------------------+
//! |                      AEAD tag (16 octets)                     |
//! +---------------------------------------------------------------+
//! ```
//!
//! All integers are big-endian. The whole header, extension included, is
//! the AEAD's associated data. Version 1 fixes the first 64 octets for
//! every later version: a newer node adds header octets (announced by
//! `header len`) or new field types, both of which a version-1 node
//! authenticates and then ignores, so nodes one version apart interoperate
//! during a rolling upgrade. An unknown message kind still parses (as
//! [`Message::Unknown`]), so the channel acknowledges it and the engine
//! ignores it.
//!
//! Parsing borrows: [`Header::parse`] reads the clear header in place and
//! [`Fields`] walks a body's TLVs as slices of the input; only the typed
//! [`Message`] decode copies values out.

use crate::{Error, NodeId, SegmentSet};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tandem_crypto::secret::SecretBytes;

/// The four octets every sync datagram starts with.
pub const MAGIC: [u8; 4] = *b"TSYN";
/// The protocol version this build sends.
pub const VERSION: u8 = 1;
/// Length of the version-1 header, the minimum any version sends.
pub const HEADER_LEN: usize = 64;
/// Length of the AEAD tag that ends every datagram.
pub const TAG_LEN: usize = tandem_crypto::aead::TAG_LEN;
/// The largest datagram the channel builds (the largest UDP payload over IPv4).
pub const MAX_DATAGRAM: usize = 65_507;
/// The largest message body that fits one version-1 datagram.
pub const MAX_BODY: usize = MAX_DATAGRAM - HEADER_LEN - TAG_LEN;

/// A datagram's clear header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The sender's protocol version.
    pub version: u8,
    /// Header length in octets, at least [`HEADER_LEN`].
    pub header_len: u8,
    /// The sending node.
    pub sender: NodeId,
    /// The node the datagram is for.
    pub receiver: NodeId,
    /// Flags; none defined in version 1, unknown ones ignored.
    pub flags: u16,
    /// The cluster this datagram belongs to.
    pub cluster_id: u32,
    /// The sender's epoch: random, new on every start.
    pub epoch: u64,
    /// The per-(sender, receiver, epoch) packet number; only increases.
    pub packet_number: u64,
    /// The message's sequence number, or 0 for an ack-only datagram.
    pub msg_seq: u64,
    /// What the sender acknowledges of the receiver's messages.
    pub ack: Option<Ack>,
}

/// An acknowledgement: cumulative plus a 64-message selective bitmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The epoch of the node whose messages are acknowledged.
    pub epoch: u64,
    /// Every message below this sequence number was received.
    pub next: u64,
    /// Bit `i`: message `next + 1 + i` was received.
    pub bits: u64,
}

impl Ack {
    /// Whether this ack covers message `seq`.
    pub fn covers(&self, seq: u64) -> bool {
        if seq < self.next {
            return true;
        }
        match seq.checked_sub(self.next + 1) {
            Some(i) if i < 64 => self.bits & (1 << i) != 0,
            _ => false,
        }
    }
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

impl Header {
    /// Parses the clear header of an untrusted datagram. Checks only the
    /// framing: magic, version, lengths (room for the tag included).
    /// Returns the header and its length in octets.
    pub fn parse(datagram: &[u8]) -> Result<(Self, usize), Error> {
        if datagram.len() < HEADER_LEN + TAG_LEN {
            return Err(Error::SyncMalformed("datagram shorter than header and tag"));
        }
        if datagram[0..4] != MAGIC {
            return Err(Error::SyncMalformed("bad magic"));
        }
        let version = datagram[4];
        if version == 0 {
            return Err(Error::SyncVersion(version));
        }
        let header_len = datagram[5];
        let len = usize::from(header_len);
        if len < HEADER_LEN {
            return Err(Error::SyncMalformed("header length below 64"));
        }
        if datagram.len() < len + TAG_LEN {
            return Err(Error::SyncMalformed("datagram shorter than its header and tag"));
        }
        let ack_epoch = be_u64(datagram, 40);
        let header = Self {
            version,
            header_len,
            sender: NodeId(datagram[6]),
            receiver: NodeId(datagram[7]),
            flags: be_u16(datagram, 8),
            cluster_id: be_u32(datagram, 12),
            epoch: be_u64(datagram, 16),
            packet_number: be_u64(datagram, 24),
            msg_seq: be_u64(datagram, 32),
            ack: (ack_epoch != 0).then(|| Ack {
                epoch: ack_epoch,
                next: be_u64(datagram, 48),
                bits: be_u64(datagram, 56),
            }),
        };
        Ok((header, len))
    }

    /// Appends the 64-octet version-1 encoding (`header_len` is written as
    /// given, so a caller may append an extension of that many more octets).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[self.version, self.header_len, self.sender.0, self.receiver.0]);
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.cluster_id.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.packet_number.to_be_bytes());
        out.extend_from_slice(&self.msg_seq.to_be_bytes());
        let ack = self.ack.unwrap_or(Ack { epoch: 0, next: 0, bits: 0 });
        out.extend_from_slice(&ack.epoch.to_be_bytes());
        out.extend_from_slice(&ack.next.to_be_bytes());
        out.extend_from_slice(&ack.bits.to_be_bytes());
    }
}

/// A message kind: an open newtype, unknown values round-trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kind(pub u16);

macro_rules! consts {
    ($ty:ident { $($(#[$m:meta])* $name:ident = $v:expr,)* }) => {
        impl $ty {
            $($(#[$m])* pub const $name: Self = Self($v);)*
        }
    };
}

consts!(Kind {
    /// STATUS: the sender is alive and owns these segments.
    HEARTBEAT = 1,
    /// An IKE SA was established or made by a rekey.
    IKE_SA_ADDED = 2,
    /// An IKE SA's state changed.
    IKE_SA_UPDATED = 3,
    /// An IKE SA's message IDs (initiator and responder) or IV counter moved.
    MESSAGE_IDS = 4,
    /// An IKE SA ended.
    IKE_SA_DELETED = 5,
    /// A CHILD_SA was added.
    CHILD_SA_ADDED = 6,
    /// A CHILD_SA was deleted.
    CHILD_SA_DELETED = 7,
    /// The sender took these segments.
    SEGMENT_TAKE = 8,
    /// The sender dropped these segments.
    SEGMENT_DROP = 9,
    /// The sender asks for the full state of these segments.
    RESYNC_REQUEST = 10,
    /// Outbound ESP sequence counters and inbound replay windows.
    ESP_STATE = 11,
    /// The last IKE request answered and the response as sent.
    LAST_RESPONSE = 12,
    /// Absolute rekey/expiry deadlines and DPD state of an SA.
    DEADLINES = 13,
    /// A virtual address leased or released.
    POOL_LEASE = 14,
    /// The full state of these segments was sent (the answer to a
    /// RESYNC_REQUEST ends with it).
    RESYNC_DONE = 15,
});

/// A field type inside a message body. Types are global (a field means the
/// same in every kind); a decoder skips the ones it does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldType(pub u16);

consts!(FieldType {
    /// u64: the IKE SA, by the owner's local SPI (which carries its segment).
    SA = 1,
    /// Opaque octets: encoded state, key material included.
    STATE = 2,
    /// u64: the IKE SA a rekey replaced.
    REKEYED_FROM = 3,
    /// u64: a [`SegmentSet`] mask.
    SEGMENTS = 4,
    /// u32: the ID of our next request.
    NEXT_MESSAGE_ID = 5,
    /// u32: the ID of the peer's next request.
    EXPECTED_REQUEST = 6,
    /// u64: the SK IV counter.
    IV_COUNTER = 7,
    /// u32: a CHILD_SA's inbound SPI.
    INBOUND_SPI = 8,
    /// u32: a CHILD_SA's outbound SPI.
    OUTBOUND_SPI = 9,
    /// u32 SPI + u64 sequence number; repeatable.
    OUTBOUND_COUNTER = 10,
    /// u32 SPI + u64 highest sequence number + window bitmap; repeatable.
    REPLAY_WINDOW = 11,
    /// Octets: the peer's last IKE request.
    REQUEST = 12,
    /// Octets: one datagram of our response; repeatable, in order.
    RESPONSE = 13,
    /// u64: rekey deadline, milliseconds on the cluster time base.
    REKEY_AT = 14,
    /// u64: expiry deadline, milliseconds on the cluster time base.
    EXPIRE_AT = 15,
    /// u64: when the peer was last heard from, for DPD, same time base.
    LAST_SEEN = 16,
    /// Octets: the pool's name.
    POOL = 17,
    /// 4 or 16 octets: an IPv4 or IPv6 address.
    ADDRESS = 18,
    /// u8: 1 if the lease ended, 0 if it began.
    RELEASED = 19,
    /// u8: 1 if the sender holds the full cluster state and may own
    /// segments, 0 while it waits for a resync. Absent means 1.
    SYNCED = 20,
});

/// One TLV field, borrowed from the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// Its type.
    pub ty: FieldType,
    /// Its value.
    pub value: &'a [u8],
}

/// A zero-copy iterator over a body's TLV fields; yields an error (once,
/// then ends) on a truncated field.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Walks `tlvs`, the body after its kind.
    pub fn new(tlvs: &'a [u8]) -> Self {
        Self { rest: tlvs }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(Err(Error::SyncMalformed("truncated field header")));
        }
        let ty = FieldType(be_u16(self.rest, 0));
        let len = usize::from(be_u16(self.rest, 2));
        let Some(value) = self.rest.get(4..4 + len) else {
            self.rest = &[];
            return Some(Err(Error::SyncMalformed("truncated field value")));
        };
        self.rest = &self.rest[4 + len..];
        Some(Ok(Field { ty, value }))
    }
}

/// Splits a body into its kind and its fields, without copying.
pub fn parse_body(body: &[u8]) -> Result<(Kind, Fields<'_>), Error> {
    if body.len() < 2 {
        return Err(Error::SyncMalformed("body shorter than its kind"));
    }
    Ok((Kind(be_u16(body, 0)), Fields::new(&body[2..])))
}

/// Builds a body field by field.
#[derive(Debug)]
pub struct BodyWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> BodyWriter<'a> {
    /// Starts a body of `kind` at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>, kind: Kind) -> Self {
        out.extend_from_slice(&kind.0.to_be_bytes());
        Self { out }
    }

    /// Appends a field from parts that together form its value.
    pub fn field(&mut self, ty: FieldType, parts: &[&[u8]]) -> Result<(), Error> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let len16 = u16::try_from(len).map_err(|_| Error::SyncTooLarge(len))?;
        self.out.extend_from_slice(&ty.0.to_be_bytes());
        self.out.extend_from_slice(&len16.to_be_bytes());
        for p in parts {
            self.out.extend_from_slice(p);
        }
        Ok(())
    }

    fn u64(&mut self, ty: FieldType, v: u64) -> Result<(), Error> {
        self.field(ty, &[&v.to_be_bytes()])
    }

    fn u32(&mut self, ty: FieldType, v: u32) -> Result<(), Error> {
        self.field(ty, &[&v.to_be_bytes()])
    }

    fn opt_u64(&mut self, ty: FieldType, v: Option<u64>) -> Result<(), Error> {
        match v {
            Some(v) => self.u64(ty, v),
            None => Ok(()),
        }
    }
}

fn val_u64(v: &[u8]) -> Result<u64, Error> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| Error::SyncMalformed("u64 field of wrong length"))
}

fn val_u32(v: &[u8]) -> Result<u32, Error> {
    <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| Error::SyncMalformed("u32 field of wrong length"))
}

fn flag(v: &[u8]) -> Result<bool, Error> {
    match v {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => Err(Error::SyncMalformed("bad flag")),
    }
}

fn need<T>(v: Option<T>) -> Result<T, Error> {
    v.ok_or(Error::SyncMalformed("required field missing"))
}

/// An outbound ESP SA's sequence counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboundCounter {
    /// The SA's SPI.
    pub spi: u32,
    /// The last sequence number used.
    pub seq: u64,
}

/// An inbound ESP SA's replay window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplaySnapshot {
    /// The SA's SPI.
    pub spi: u32,
    /// The highest sequence number accepted.
    pub top: u64,
    /// The window bitmap below `top`, as the ESP engine encodes it.
    pub bitmap: Vec<u8>,
}

/// One typed sync message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// STATUS: alive, owning `segments`.
    Heartbeat {
        /// The segments the sender owns.
        segments: SegmentSet,
        /// Whether the sender holds the full state and may own segments.
        synced: bool,
    },
    /// An IKE SA established, or made by a rekey of `rekeyed_from`.
    IkeSaAdded {
        /// The SA.
        sa: u64,
        /// The SA it replaced, for a rekey.
        rekeyed_from: Option<u64>,
        /// Its encoded state (key material included; opaque here).
        state: SecretBytes,
    },
    /// An IKE SA's state replaced.
    IkeSaUpdated {
        /// The SA.
        sa: u64,
        /// Its encoded state.
        state: SecretBytes,
    },
    /// Message IDs and the SK IV counter of an IKE SA.
    MessageIds {
        /// The SA.
        sa: u64,
        /// The ID of our next request (initiator side).
        next_message_id: u32,
        /// The ID of the peer's next request (responder side).
        expected_request: u32,
        /// The SK IV counter.
        iv_counter: u64,
    },
    /// An IKE SA ended.
    IkeSaDeleted {
        /// The SA.
        sa: u64,
    },
    /// A CHILD_SA added.
    ChildSaAdded {
        /// Its IKE SA.
        sa: u64,
        /// Our inbound SPI.
        inbound_spi: u32,
        /// Our outbound SPI.
        outbound_spi: u32,
        /// Its encoded state (keys, selectors; opaque here).
        state: SecretBytes,
    },
    /// A CHILD_SA deleted.
    ChildSaDeleted {
        /// Its IKE SA.
        sa: u64,
        /// Its inbound SPI.
        inbound_spi: u32,
    },
    /// The sender took `segments`.
    SegmentTake {
        /// The segments.
        segments: SegmentSet,
    },
    /// The sender dropped `segments`.
    SegmentDrop {
        /// The segments.
        segments: SegmentSet,
    },
    /// The sender asks for the full state of `segments`.
    ResyncRequest {
        /// The segments.
        segments: SegmentSet,
    },
    /// The full state of `segments` (those the sender owns of a requested
    /// set) has been sent.
    ResyncDone {
        /// The segments.
        segments: SegmentSet,
    },
    /// ESP counters and replay windows.
    EspState {
        /// Outbound counters.
        outbound: Vec<OutboundCounter>,
        /// Inbound replay windows.
        inbound: Vec<ReplaySnapshot>,
    },
    /// The last request answered on an IKE SA, and our response as sent.
    LastResponse {
        /// The SA.
        sa: u64,
        /// The peer's request.
        request: Vec<u8>,
        /// Our response: one datagram or its fragments, in order.
        response: Vec<Vec<u8>>,
    },
    /// Absolute deadlines (milliseconds on the cluster time base, which the
    /// driver maps to and from its clock) and DPD state of an IKE SA, or of
    /// one of its CHILD_SAs.
    Deadlines {
        /// The IKE SA.
        sa: u64,
        /// The CHILD_SA (inbound SPI), or `None` for the IKE SA itself.
        child: Option<u32>,
        /// When it is due for rekeying.
        rekey_at: Option<u64>,
        /// When it expires.
        expire_at: Option<u64>,
        /// When the peer was last heard from.
        last_seen: Option<u64>,
    },
    /// A pool address leased to, or released by, an IKE SA's peer.
    PoolLease {
        /// The pool's name.
        pool: Vec<u8>,
        /// The address.
        address: IpAddr,
        /// The IKE SA holding it.
        sa: u64,
        /// Whether the lease ended.
        released: bool,
    },
    /// A kind this version does not know: acknowledged and ignored.
    Unknown {
        /// The kind.
        kind: Kind,
    },
}

impl Message {
    /// The message's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Heartbeat { .. } => Kind::HEARTBEAT,
            Self::IkeSaAdded { .. } => Kind::IKE_SA_ADDED,
            Self::IkeSaUpdated { .. } => Kind::IKE_SA_UPDATED,
            Self::MessageIds { .. } => Kind::MESSAGE_IDS,
            Self::IkeSaDeleted { .. } => Kind::IKE_SA_DELETED,
            Self::ChildSaAdded { .. } => Kind::CHILD_SA_ADDED,
            Self::ChildSaDeleted { .. } => Kind::CHILD_SA_DELETED,
            Self::SegmentTake { .. } => Kind::SEGMENT_TAKE,
            Self::SegmentDrop { .. } => Kind::SEGMENT_DROP,
            Self::ResyncRequest { .. } => Kind::RESYNC_REQUEST,
            Self::ResyncDone { .. } => Kind::RESYNC_DONE,
            Self::EspState { .. } => Kind::ESP_STATE,
            Self::LastResponse { .. } => Kind::LAST_RESPONSE,
            Self::Deadlines { .. } => Kind::DEADLINES,
            Self::PoolLease { .. } => Kind::POOL_LEASE,
            Self::Unknown { kind } => *kind,
        }
    }

    /// Appends the body (kind and fields) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut w = BodyWriter::new(out, self.kind());
        match self {
            Self::Heartbeat { segments, synced } => {
                w.u64(FieldType::SEGMENTS, segments.bits())?;
                w.field(FieldType::SYNCED, &[&[u8::from(*synced)]])?;
            }
            Self::SegmentTake { segments }
            | Self::SegmentDrop { segments }
            | Self::ResyncRequest { segments }
            | Self::ResyncDone { segments } => w.u64(FieldType::SEGMENTS, segments.bits())?,
            Self::IkeSaAdded { sa, rekeyed_from, state } => {
                w.u64(FieldType::SA, *sa)?;
                w.opt_u64(FieldType::REKEYED_FROM, *rekeyed_from)?;
                w.field(FieldType::STATE, &[state.expose()])?;
            }
            Self::IkeSaUpdated { sa, state } => {
                w.u64(FieldType::SA, *sa)?;
                w.field(FieldType::STATE, &[state.expose()])?;
            }
            Self::MessageIds { sa, next_message_id, expected_request, iv_counter } => {
                w.u64(FieldType::SA, *sa)?;
                w.u32(FieldType::NEXT_MESSAGE_ID, *next_message_id)?;
                w.u32(FieldType::EXPECTED_REQUEST, *expected_request)?;
                w.u64(FieldType::IV_COUNTER, *iv_counter)?;
            }
            Self::IkeSaDeleted { sa } => w.u64(FieldType::SA, *sa)?,
            Self::ChildSaAdded { sa, inbound_spi, outbound_spi, state } => {
                w.u64(FieldType::SA, *sa)?;
                w.u32(FieldType::INBOUND_SPI, *inbound_spi)?;
                w.u32(FieldType::OUTBOUND_SPI, *outbound_spi)?;
                w.field(FieldType::STATE, &[state.expose()])?;
            }
            Self::ChildSaDeleted { sa, inbound_spi } => {
                w.u64(FieldType::SA, *sa)?;
                w.u32(FieldType::INBOUND_SPI, *inbound_spi)?;
            }
            Self::EspState { outbound, inbound } => {
                for c in outbound {
                    w.field(FieldType::OUTBOUND_COUNTER, &[&c.spi.to_be_bytes(), &c.seq.to_be_bytes()])?;
                }
                for r in inbound {
                    w.field(
                        FieldType::REPLAY_WINDOW,
                        &[&r.spi.to_be_bytes(), &r.top.to_be_bytes(), &r.bitmap],
                    )?;
                }
            }
            Self::LastResponse { sa, request, response } => {
                w.u64(FieldType::SA, *sa)?;
                w.field(FieldType::REQUEST, &[request])?;
                for r in response {
                    w.field(FieldType::RESPONSE, &[r])?;
                }
            }
            Self::Deadlines { sa, child, rekey_at, expire_at, last_seen } => {
                w.u64(FieldType::SA, *sa)?;
                if let Some(c) = child {
                    w.u32(FieldType::INBOUND_SPI, *c)?;
                }
                w.opt_u64(FieldType::REKEY_AT, *rekey_at)?;
                w.opt_u64(FieldType::EXPIRE_AT, *expire_at)?;
                w.opt_u64(FieldType::LAST_SEEN, *last_seen)?;
            }
            Self::PoolLease { pool, address, sa, released } => {
                w.field(FieldType::POOL, &[pool])?;
                match address {
                    IpAddr::V4(a) => w.field(FieldType::ADDRESS, &[&a.octets()])?,
                    IpAddr::V6(a) => w.field(FieldType::ADDRESS, &[&a.octets()])?,
                }
                w.u64(FieldType::SA, *sa)?;
                w.field(FieldType::RELEASED, &[&[u8::from(*released)]])?;
            }
            Self::Unknown { .. } => {}
        }
        Ok(())
    }

    /// Decodes a body. Fields of unknown type are skipped; a repeated
    /// single-valued field keeps its last value.
    pub fn decode(body: &[u8]) -> Result<Self, Error> {
        let (kind, fields) = parse_body(body)?;
        if !(Kind::HEARTBEAT.0..=Kind::RESYNC_DONE.0).contains(&kind.0) {
            // Its fields may mean anything to a newer version.
            return Ok(Self::Unknown { kind });
        }
        let mut sa = None;
        let mut state = None;
        let mut rekeyed_from = None;
        let mut segments = None;
        let (mut next_mid, mut expected, mut iv_counter) = (None, None, None);
        let (mut inbound_spi, mut outbound_spi) = (None, None);
        let mut outbound = Vec::new();
        let mut inbound = Vec::new();
        let mut request = None;
        let mut response = Vec::new();
        let (mut rekey_at, mut expire_at, mut last_seen) = (None, None, None);
        let (mut pool, mut address, mut released) = (None, None, None);
        let mut synced = None;
        for f in fields {
            let Field { ty, value: v } = f?;
            match ty {
                FieldType::SA => sa = Some(val_u64(v)?),
                FieldType::STATE => state = Some(SecretBytes::from_slice(v)),
                FieldType::REKEYED_FROM => rekeyed_from = Some(val_u64(v)?),
                FieldType::SEGMENTS => segments = Some(SegmentSet::from_bits(val_u64(v)?)),
                FieldType::NEXT_MESSAGE_ID => next_mid = Some(val_u32(v)?),
                FieldType::EXPECTED_REQUEST => expected = Some(val_u32(v)?),
                FieldType::IV_COUNTER => iv_counter = Some(val_u64(v)?),
                FieldType::INBOUND_SPI => inbound_spi = Some(val_u32(v)?),
                FieldType::OUTBOUND_SPI => outbound_spi = Some(val_u32(v)?),
                FieldType::OUTBOUND_COUNTER => {
                    if v.len() != 12 {
                        return Err(Error::SyncMalformed("outbound counter of wrong length"));
                    }
                    outbound.push(OutboundCounter { spi: val_u32(&v[..4])?, seq: val_u64(&v[4..])? });
                }
                FieldType::REPLAY_WINDOW => {
                    if v.len() < 12 {
                        return Err(Error::SyncMalformed("replay window too short"));
                    }
                    inbound.push(ReplaySnapshot {
                        spi: val_u32(&v[..4])?,
                        top: val_u64(&v[4..12])?,
                        bitmap: v[12..].to_vec(),
                    });
                }
                FieldType::REQUEST => request = Some(v.to_vec()),
                FieldType::RESPONSE => response.push(v.to_vec()),
                FieldType::REKEY_AT => rekey_at = Some(val_u64(v)?),
                FieldType::EXPIRE_AT => expire_at = Some(val_u64(v)?),
                FieldType::LAST_SEEN => last_seen = Some(val_u64(v)?),
                FieldType::POOL => pool = Some(v.to_vec()),
                FieldType::ADDRESS => {
                    address = Some(if let Ok(a) = <[u8; 4]>::try_from(v) {
                        IpAddr::V4(Ipv4Addr::from(a))
                    } else if let Ok(a) = <[u8; 16]>::try_from(v) {
                        IpAddr::V6(Ipv6Addr::from(a))
                    } else {
                        return Err(Error::SyncMalformed("address of wrong length"));
                    })
                }
                FieldType::RELEASED => released = Some(flag(v)?),
                FieldType::SYNCED => synced = Some(flag(v)?),
                _ => {}
            }
        }
        Ok(match kind {
            Kind::HEARTBEAT => Self::Heartbeat { segments: need(segments)?, synced: synced.unwrap_or(true) },
            Kind::SEGMENT_TAKE => Self::SegmentTake { segments: need(segments)? },
            Kind::SEGMENT_DROP => Self::SegmentDrop { segments: need(segments)? },
            Kind::RESYNC_REQUEST => Self::ResyncRequest { segments: need(segments)? },
            Kind::RESYNC_DONE => Self::ResyncDone { segments: need(segments)? },
            Kind::IKE_SA_ADDED => Self::IkeSaAdded { sa: need(sa)?, rekeyed_from, state: need(state)? },
            Kind::IKE_SA_UPDATED => Self::IkeSaUpdated { sa: need(sa)?, state: need(state)? },
            Kind::MESSAGE_IDS => Self::MessageIds {
                sa: need(sa)?,
                next_message_id: need(next_mid)?,
                expected_request: need(expected)?,
                iv_counter: need(iv_counter)?,
            },
            Kind::IKE_SA_DELETED => Self::IkeSaDeleted { sa: need(sa)? },
            Kind::CHILD_SA_ADDED => Self::ChildSaAdded {
                sa: need(sa)?,
                inbound_spi: need(inbound_spi)?,
                outbound_spi: need(outbound_spi)?,
                state: need(state)?,
            },
            Kind::CHILD_SA_DELETED => Self::ChildSaDeleted { sa: need(sa)?, inbound_spi: need(inbound_spi)? },
            Kind::ESP_STATE => Self::EspState { outbound, inbound },
            Kind::LAST_RESPONSE => Self::LastResponse { sa: need(sa)?, request: need(request)?, response },
            Kind::DEADLINES => {
                Self::Deadlines { sa: need(sa)?, child: inbound_spi, rekey_at, expire_at, last_seen }
            }
            Kind::POOL_LEASE => Self::PoolLease {
                pool: need(pool)?,
                address: need(address)?,
                sa: need(sa)?,
                released: need(released)?,
            },
            kind => Self::Unknown { kind },
        })
    }
}
