//! The octets of an [`IkeSaState`] and of a CHILD_SA with its deadlines,
//! for a cluster's sync channel (which must authenticate and encrypt them:
//! they hold keys).
//!
//! Format version 1 ([`SYNC_FORMAT_VERSION`]), integers big endian:
//!
//! ```text
//! blob      = version:u8 kind:u8 body          kind 1: IKE SA, 2: CHILD_SA
//! IKE SA    = id:u64 flags:u8 spi_i:u64 spi_r:u64 local:sock remote:sock
//!             prf:u16 encr integ next_message_id:u32 expected_request:u32
//!             iv_counter:u64 last_exchange fragment_size:opt<u64>
//!             n:u32 entry{n} n:u32 ip{n} (leased) n:u32 ip{n} (assigned)
//!             rekey_at:opt<time> expire_at:opt<time>
//!             SK_d SK_ai SK_ar SK_ei SK_er SK_pi SK_pr (each n:u32 octets{n})
//!   flags   = 1 initiator | 2 local behind NAT | 4 remote behind NAT
//!   entry   = inbound:u32 outbound:u32 n:u32 ts{n} n:u32 ts{n}
//!             rekey_at:opt<time> expire_at:opt<time>
//!   last_exchange = opt<request:bytes n:u32 datagram:bytes{n}>
//! CHILD_SA  = ike_sa:u64 local:sock remote:sock flags:u8 inbound:u32
//!             outbound:u32 encr integ n:u32 ts{n} n:u32 ts{n}
//!             rekey_at:opt<time> expire_at:opt<time> inbound:bytes outbound:bytes
//!   flags   = 1 UDP encapsulation | 2 ESN
//! encr      = transform ID:u16 key length in bits:u16 (0: no attribute)
//! integ     = transform ID:u16 (0: none, with an AEAD)
//! prf       = transform ID:u16
//! ts        = ip protocol:u8 start port:u16 end port:u16 start:ip end:ip
//! ip        = 4:u8 octets{4} | 6:u8 octets{16}
//! sock      = 4:u8 octets{4} port:u16 | 6:u8 octets{16} port:u16 flowinfo:u32 scope:u32
//! opt<x>    = 0:u8 | 1:u8 x
//! time      = milliseconds on the cluster's TimeBase:u64
//! bytes     = n:u32 octets{n}
//! ```
//!
//! Algorithms are IANA transform IDs (RFC 7296 section 3.3.2). Decoding
//! checks every length and count against the input and the `MAX_*` limits,
//! the keys' lengths against the algorithms, and rejects trailing octets.

use super::{ChildEntry, IkeSaState};
use crate::Error;
use crate::event::{ChildSa, IkeSaId, NatState};
use crate::keys::IkeKeys;
use crate::protect::SkSuite;
use crate::wire::TrafficSelector;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use core::time::Duration;
use std::time::Instant;
use tandem_crypto::cbc_hmac::IntegAlgorithm;
use tandem_crypto::proposal::{EncrAlgorithm, Transform};
use tandem_crypto::secret::SecretBytes;

/// The format version this build writes and reads (the first octet).
pub const SYNC_FORMAT_VERSION: u8 = 1;
/// The most CHILD_SAs an encoded IKE SA may list.
pub const MAX_CHILDREN: usize = 256;
/// The most traffic selectors per side of a CHILD_SA.
pub const MAX_SELECTORS: usize = 64;
/// The most virtual addresses of each kind an IKE SA may hold.
pub const MAX_ADDRESSES: usize = 16;
/// The most datagrams (fragments) of the last response.
pub const MAX_FRAGMENTS: usize = 256;
/// The longest datagram of the last exchange, in octets.
pub const MAX_DATAGRAM: usize = 64 * 1024;
/// The longest key (SK_* or KEYMAT of one direction), in octets.
pub const MAX_KEY_LEN: usize = 256;

/// Second octet of an encoded IKE SA.
const KIND_IKE_SA: u8 = 1;
/// Second octet of an encoded CHILD_SA.
const KIND_CHILD_SA: u8 = 2;
/// IANA transform types (RFC 7296 section 3.3.2).
const TYPE_ENCR: u8 = 1;
const TYPE_PRF: u8 = 2;
const TYPE_INTEG: u8 = 3;

/// Maps `Instant`s, which mean nothing beyond one process, to and from
/// milliseconds on a time base the whole cluster shares (the caller's
/// wall clock, say): `now` on this node is `now_ms` there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeBase {
    /// An instant of this node's clock.
    pub now: Instant,
    /// The cluster-wide time at `now`, in milliseconds.
    pub now_ms: u64,
}

impl TimeBase {
    /// `t` in milliseconds on the shared base, earlier or later than `now`
    /// (sub-millisecond parts dropped, saturating at 0 and `u64::MAX`).
    pub fn to_ms(self, t: Instant) -> u64 {
        match t.checked_duration_since(self.now) {
            Some(ahead) => self.now_ms.saturating_add(millis(ahead)),
            None => self.now_ms.saturating_sub(millis(self.now.saturating_duration_since(t))),
        }
    }

    /// The instant of this node's clock at `ms` on the shared base; clamped
    /// (towards `now`) where the platform's `Instant` cannot reach so far.
    pub fn to_instant(self, ms: u64) -> Instant {
        if ms >= self.now_ms {
            clamped(self.now, Duration::from_millis(ms - self.now_ms), Instant::checked_add)
        } else {
            clamped(self.now, Duration::from_millis(self.now_ms - ms), Instant::checked_sub)
        }
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `step(base, d)`, with `d` halved until the result is representable.
fn clamped(base: Instant, mut d: Duration, step: fn(&Instant, Duration) -> Option<Instant>) -> Instant {
    loop {
        if let Some(t) = step(&base, d) {
            return t;
        }
        if d.is_zero() {
            return base;
        }
        d /= 2;
    }
}

impl IkeSaState {
    /// The state as octets (keys included: the cluster's sync channel must
    /// protect them), its deadlines on `base`. The buffer is sized before
    /// it is filled, so no copy of the keys is left behind unzeroized.
    pub fn encode(&self, base: &TimeBase) -> SecretBytes {
        encode_with(|w| {
            w.u8(SYNC_FORMAT_VERSION);
            w.u8(KIND_IKE_SA);
            w.u64(self.id.0);
            let flags = u8::from(self.initiator)
                | u8::from(self.nat.local_behind_nat) << 1
                | u8::from(self.nat.remote_behind_nat) << 2;
            w.u8(flags);
            w.u64(self.spi_i);
            w.u64(self.spi_r);
            w.sock(self.local);
            w.sock(self.remote);
            w.u16(Transform::Prf(self.prf).iana().1);
            w.encr(self.encr);
            w.integ(self.integ);
            w.u32(self.next_message_id);
            w.u32(self.expected_request);
            w.u64(self.iv_counter);
            match &self.last_exchange {
                Some((request, response)) => {
                    w.u8(1);
                    w.bytes(request);
                    w.len(response.len());
                    for d in response {
                        w.bytes(d);
                    }
                }
                None => w.u8(0),
            }
            match self.fragment_size {
                Some(size) => {
                    w.u8(1);
                    w.u64(u64::try_from(size).unwrap_or(u64::MAX));
                }
                None => w.u8(0),
            }
            w.len(self.children.len());
            for c in &self.children {
                w.u32(c.inbound_spi);
                w.u32(c.outbound_spi);
                w.selectors(&c.local_ts);
                w.selectors(&c.remote_ts);
                w.time(c.rekey_at, base);
                w.time(c.expire_at, base);
            }
            for ips in [&self.virtual_ips, &self.assigned_ips] {
                w.len(ips.len());
                for ip in ips {
                    w.ip(*ip);
                }
            }
            w.time(self.rekey_at, base);
            w.time(self.expire_at, base);
            for key in self.keys.parts() {
                w.bytes(key.expose());
            }
        })
    }

    /// The state encoded by [`Self::encode`], its deadlines mapped onto this
    /// node's clock with `base`. Fails on another format version
    /// ([`Error::SyncVersion`]) or octets that are not a whole, consistent
    /// IKE SA state ([`Error::InvalidSyncState`]); never panics, and
    /// allocates in proportion to the input's length.
    pub fn decode(bytes: &[u8], base: &TimeBase) -> Result<Self, Error> {
        let mut r = Reader::start(bytes, KIND_IKE_SA)?;
        let id = IkeSaId(r.u64()?);
        let flags = r.u8()?;
        if flags & !0b111 != 0 {
            return Err(invalid("unknown IKE SA flags"));
        }
        let (spi_i, spi_r) = (r.u64()?, r.u64()?);
        let (local, remote) = (r.sock()?, r.sock()?);
        let prf = match Transform::from_iana(TYPE_PRF, r.u16()?, None) {
            Some(Transform::Prf(p)) => p,
            _ => return Err(invalid("unknown PRF")),
        };
        let (encr, integ) = (r.encr()?, r.integ()?);
        let suite =
            SkSuite::new(encr, integ).map_err(|_| invalid("encryption and integrity do not match"))?;
        let (next_message_id, expected_request, iv_counter) = (r.u32()?, r.u32()?, r.u64()?);
        let last_exchange = match r.flag()? {
            true => {
                let request = r.bytes(MAX_DATAGRAM)?.to_vec();
                let n = r.count(MAX_FRAGMENTS)?;
                let mut response = Vec::new();
                for _ in 0..n {
                    response.push(r.bytes(MAX_DATAGRAM)?.to_vec());
                }
                Some((request, response))
            }
            false => None,
        };
        let fragment_size = match r.flag()? {
            true => Some(usize::try_from(r.u64()?).map_err(|_| invalid("fragment size too large"))?),
            false => None,
        };
        let n = r.count(MAX_CHILDREN)?;
        let mut children = Vec::new();
        for _ in 0..n {
            children.push(ChildEntry {
                inbound_spi: r.u32()?,
                outbound_spi: r.u32()?,
                local_ts: r.selectors()?,
                remote_ts: r.selectors()?,
                rekey_at: r.time(base)?,
                expire_at: r.time(base)?,
            });
        }
        let virtual_ips = r.ips()?;
        let assigned_ips = r.ips()?;
        let rekey_at = r.time(base)?;
        let expire_at = r.time(base)?;
        let (prf_len, encr_len, integ_len) =
            (prf.output_len(), suite.encr_keymat_len(), suite.integ_key_len());
        let keys = IkeKeys::from_parts([
            r.key(prf_len)?,
            r.key(integ_len)?,
            r.key(integ_len)?,
            r.key(encr_len)?,
            r.key(encr_len)?,
            r.key(prf_len)?,
            r.key(prf_len)?,
        ]);
        r.finish()?;
        Ok(Self {
            id,
            initiator: flags & 1 != 0,
            spi_i,
            spi_r,
            local,
            remote,
            prf,
            encr,
            integ,
            nat: NatState { local_behind_nat: flags & 2 != 0, remote_behind_nat: flags & 4 != 0 },
            next_message_id,
            expected_request,
            iv_counter,
            last_exchange,
            fragment_size,
            children,
            virtual_ips,
            assigned_ips,
            rekey_at,
            expire_at,
            keys,
        })
    }
}

/// A CHILD_SA with its keys and deadlines (those of
/// [`SyncEvent::ChildAdded`](super::SyncEvent::ChildAdded)) as octets, the
/// deadlines on `base`: to travel only over the cluster's protected sync
/// channel.
pub fn encode_child(
    child: &ChildSa,
    rekey_at: Option<Instant>,
    expire_at: Option<Instant>,
    base: &TimeBase,
) -> SecretBytes {
    encode_with(|w| {
        w.u8(SYNC_FORMAT_VERSION);
        w.u8(KIND_CHILD_SA);
        w.u64(child.ike_sa.0);
        w.sock(child.local);
        w.sock(child.remote);
        w.u8(u8::from(child.udp_encap) | u8::from(child.esn) << 1);
        w.u32(child.inbound_spi);
        w.u32(child.outbound_spi);
        w.encr(child.encr);
        w.integ(child.integ);
        w.selectors(&child.local_ts);
        w.selectors(&child.remote_ts);
        w.time(rekey_at, base);
        w.time(expire_at, base);
        w.bytes(child.inbound_keymat.expose());
        w.bytes(child.outbound_keymat.expose());
    })
}

/// A CHILD_SA and its rekey and expiry deadlines from the octets of
/// [`encode_child`], the deadlines mapped onto this node's clock with
/// `base`. Fails like [`IkeSaState::decode`]; never panics.
pub fn decode_child(
    bytes: &[u8],
    base: &TimeBase,
) -> Result<(ChildSa, Option<Instant>, Option<Instant>), Error> {
    let mut r = Reader::start(bytes, KIND_CHILD_SA)?;
    let ike_sa = IkeSaId(r.u64()?);
    let (local, remote) = (r.sock()?, r.sock()?);
    let flags = r.u8()?;
    if flags & !0b11 != 0 {
        return Err(invalid("unknown CHILD_SA flags"));
    }
    let (inbound_spi, outbound_spi) = (r.u32()?, r.u32()?);
    let (encr, integ) = (r.encr()?, r.integ()?);
    let suite = SkSuite::new(encr, integ).map_err(|_| invalid("encryption and integrity do not match"))?;
    let (local_ts, remote_ts) = (r.selectors()?, r.selectors()?);
    let (rekey_at, expire_at) = (r.time(base)?, r.time(base)?);
    let keymat_len = suite.encr_keymat_len() + suite.integ_key_len();
    let (inbound_keymat, outbound_keymat) = (r.key(keymat_len)?, r.key(keymat_len)?);
    r.finish()?;
    let child = ChildSa {
        ike_sa,
        local,
        remote,
        udp_encap: flags & 1 != 0,
        inbound_spi,
        outbound_spi,
        encr,
        integ,
        esn: flags & 2 != 0,
        local_ts,
        remote_ts,
        inbound_keymat,
        outbound_keymat,
    };
    Ok((child, rekey_at, expire_at))
}

/// Runs `emit` twice: once to count the octets, once to write them into a
/// buffer of exactly that capacity, which therefore never reallocates.
fn encode_with(emit: impl Fn(&mut Writer)) -> SecretBytes {
    let mut count = Writer { buf: None, len: 0 };
    emit(&mut count);
    let mut fill = Writer { buf: Some(Vec::with_capacity(count.len)), len: 0 };
    emit(&mut fill);
    debug_assert_eq!(fill.len, count.len, "both passes write the same octets");
    SecretBytes::new(fill.buf.unwrap_or_default())
}

/// Counts octets (`buf` empty) or writes them.
struct Writer {
    buf: Option<Vec<u8>>,
    len: usize,
}

impl Writer {
    fn put(&mut self, b: &[u8]) {
        self.len = self.len.saturating_add(b.len());
        if let Some(buf) = &mut self.buf {
            debug_assert!(buf.capacity() - buf.len() >= b.len(), "sized by the counting pass");
            buf.extend_from_slice(b);
        }
    }

    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.put(&v.to_be_bytes());
    }

    /// A count or length (beyond `u32::MAX`, written as that, which no
    /// decoder accepts).
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.put(b);
    }

    fn ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.u8(4);
                self.put(&a.octets());
            }
            IpAddr::V6(a) => {
                self.u8(6);
                self.put(&a.octets());
            }
        }
    }

    fn sock(&mut self, s: SocketAddr) {
        self.ip(s.ip());
        self.u16(s.port());
        if let SocketAddr::V6(s) = s {
            self.u32(s.flowinfo());
            self.u32(s.scope_id());
        }
    }

    fn encr(&mut self, e: EncrAlgorithm) {
        let (_, id, bits) = Transform::Encr(e).iana();
        self.u16(id);
        self.u16(bits.unwrap_or(0));
    }

    fn integ(&mut self, i: Option<IntegAlgorithm>) {
        self.u16(i.map_or(0, |i| Transform::Integ(i).iana().1));
    }

    fn selectors(&mut self, ts: &[TrafficSelector]) {
        self.len(ts.len());
        for t in ts {
            self.u8(t.ip_protocol);
            self.u16(t.start_port);
            self.u16(t.end_port);
            self.ip(t.start_addr);
            self.ip(t.end_addr);
        }
    }

    fn time(&mut self, t: Option<Instant>, base: &TimeBase) {
        match t {
            Some(t) => {
                self.u8(1);
                self.u64(base.to_ms(t));
            }
            None => self.u8(0),
        }
    }
}

fn invalid(what: &'static str) -> Error {
    Error::InvalidSyncState(what)
}

/// Reads an encoding front to back; every read is checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks the version and kind octets.
    fn start(bytes: &'a [u8], kind: u8) -> Result<Self, Error> {
        let mut r = Self { rest: bytes };
        let version = r.u8()?;
        if version != SYNC_FORMAT_VERSION {
            return Err(Error::SyncVersion(version));
        }
        if r.u8()? != kind {
            return Err(invalid("not the kind of state expected"));
        }
        Ok(r)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.rest.len() {
            return Err(invalid("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| invalid("truncated"))
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// An option's presence octet: 0 or 1.
    fn flag(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid("presence octet neither 0 nor 1")),
        }
    }

    /// A count or length of at most `max`.
    fn count(&mut self, max: usize) -> Result<usize, Error> {
        usize::try_from(self.u32()?)
            .ok()
            .filter(|n| *n <= max)
            .ok_or(invalid("count or length over its limit"))
    }

    /// Length-prefixed octets, at most `max`.
    fn bytes(&mut self, max: usize) -> Result<&'a [u8], Error> {
        let n = self.count(max)?;
        self.take(n)
    }

    /// A key of exactly `len` octets, as the algorithms say.
    fn key(&mut self, len: usize) -> Result<SecretBytes, Error> {
        let key = self.bytes(MAX_KEY_LEN)?;
        if key.len() != len {
            return Err(invalid("key length does not match the algorithms"));
        }
        Ok(SecretBytes::from_slice(key))
    }

    fn ip(&mut self) -> Result<IpAddr, Error> {
        match self.u8()? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>()?))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))),
            _ => Err(invalid("unknown address family")),
        }
    }

    fn ips(&mut self) -> Result<Vec<IpAddr>, Error> {
        let n = self.count(MAX_ADDRESSES)?;
        (0..n).map(|_| self.ip()).collect()
    }

    fn sock(&mut self) -> Result<SocketAddr, Error> {
        Ok(match self.ip()? {
            IpAddr::V4(a) => SocketAddr::V4(SocketAddrV4::new(a, self.u16()?)),
            IpAddr::V6(a) => {
                let port = self.u16()?;
                SocketAddr::V6(SocketAddrV6::new(a, port, self.u32()?, self.u32()?))
            }
        })
    }

    fn encr(&mut self) -> Result<EncrAlgorithm, Error> {
        let (id, bits) = (self.u16()?, self.u16()?);
        match Transform::from_iana(TYPE_ENCR, id, (bits != 0).then_some(bits)) {
            Some(Transform::Encr(e)) => Ok(e),
            _ => Err(invalid("unknown encryption algorithm")),
        }
    }

    fn integ(&mut self) -> Result<Option<IntegAlgorithm>, Error> {
        match self.u16()? {
            0 => Ok(None),
            id => match Transform::from_iana(TYPE_INTEG, id, None) {
                Some(Transform::Integ(i)) => Ok(Some(i)),
                _ => Err(invalid("unknown integrity algorithm")),
            },
        }
    }

    fn selectors(&mut self) -> Result<Vec<TrafficSelector>, Error> {
        let n = self.count(MAX_SELECTORS)?;
        (0..n)
            .map(|_| {
                Ok(TrafficSelector {
                    ip_protocol: self.u8()?,
                    start_port: self.u16()?,
                    end_port: self.u16()?,
                    start_addr: self.ip()?,
                    end_addr: self.ip()?,
                })
            })
            .collect()
    }

    fn time(&mut self, base: &TimeBase) -> Result<Option<Instant>, Error> {
        Ok(match self.flag()? {
            true => Some(base.to_instant(self.u64()?)),
            false => None,
        })
    }

    /// Checks that nothing follows.
    fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() { Ok(()) } else { Err(invalid("trailing octets")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use std::sync::OnceLock;
    use tandem_crypto::aead::AeadAlgorithm;
    use tandem_crypto::cbc_hmac::CbcAlgorithm;
    use tandem_crypto::prf::PrfAlgorithm;

    /// Milliseconds on the shared base at [`origin`].
    const NOW_MS: u64 = 1_780_272_000_000;

    /// One instant for every test: the generators' deadlines count from it.
    #[allow(clippy::disallowed_methods)] // an origin for the tests' instants
    fn origin() -> Instant {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        *ORIGIN.get_or_init(Instant::now)
    }

    fn base() -> TimeBase {
        TimeBase { now: origin(), now_ms: NOW_MS }
    }

    /// `ms` milliseconds after (or before) the origin.
    fn at(ms: i64) -> Instant {
        let d = Duration::from_millis(ms.unsigned_abs());
        if ms >= 0 { origin() + d } else { origin().checked_sub(d).expect("an hour back is representable") }
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![any::<[u8; 4]>().prop_map(IpAddr::from), any::<[u8; 16]>().prop_map(IpAddr::from)]
    }

    fn sock() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(SocketAddr::from),
            (any::<[u8; 16]>(), any::<u16>(), any::<u32>(), any::<u32>())
                .prop_map(|(a, p, f, s)| SocketAddr::V6(SocketAddrV6::new(a.into(), p, f, s))),
        ]
    }

    fn selectors() -> impl Strategy<Value = Vec<TrafficSelector>> {
        let ts = (any::<u8>(), any::<u16>(), any::<u16>(), ip(), ip()).prop_map(|(p, sp, ep, sa, ea)| {
            TrafficSelector { ip_protocol: p, start_port: sp, end_port: ep, start_addr: sa, end_addr: ea }
        });
        vec(ts, 0..4)
    }

    fn deadline() -> impl Strategy<Value = Option<Instant>> {
        proptest::option::of((-3_600_000i64..1_000_000_000_000).prop_map(at))
    }

    fn suite() -> impl Strategy<Value = SkSuite> {
        let aead = [AeadAlgorithm::Aes128Gcm16, AeadAlgorithm::Aes256Gcm16, AeadAlgorithm::ChaCha20Poly1305];
        let cbc = [CbcAlgorithm::Aes128Cbc, CbcAlgorithm::Aes256Cbc];
        let integ =
            [IntegAlgorithm::HmacSha256_128, IntegAlgorithm::HmacSha384_192, IntegAlgorithm::HmacSha512_256];
        prop_oneof![
            proptest::sample::select(aead.to_vec()).prop_map(SkSuite::Aead),
            (proptest::sample::select(cbc.to_vec()), proptest::sample::select(integ.to_vec()))
                .prop_map(|(c, i)| SkSuite::CbcHmac(c, i)),
        ]
    }

    fn algorithms(suite: SkSuite) -> (EncrAlgorithm, Option<IntegAlgorithm>) {
        match suite {
            SkSuite::Aead(a) => (EncrAlgorithm::Aead(a), None),
            SkSuite::CbcHmac(c, i) => (EncrAlgorithm::Cbc(c), Some(i)),
        }
    }

    fn prf() -> impl Strategy<Value = PrfAlgorithm> {
        proptest::sample::select(vec![
            PrfAlgorithm::HmacSha256,
            PrfAlgorithm::HmacSha384,
            PrfAlgorithm::HmacSha512,
        ])
    }

    /// `len` octets counting up from `seed`.
    fn key(len: usize, seed: u8) -> SecretBytes {
        SecretBytes::new((0..len).map(|i| seed.wrapping_add(i as u8)).collect())
    }

    fn keys(prf: PrfAlgorithm, suite: SkSuite, seed: u8) -> IkeKeys {
        let (p, e, i) = (prf.output_len(), suite.encr_keymat_len(), suite.integ_key_len());
        let lens = [p, i, i, e, e, p, p];
        IkeKeys::from_parts(core::array::from_fn(|n| key(lens[n], seed.wrapping_add(n as u8 * 37))))
    }

    fn child_entry() -> impl Strategy<Value = ChildEntry> {
        (any::<u32>(), any::<u32>(), selectors(), selectors(), deadline(), deadline()).prop_map(
            |(inbound_spi, outbound_spi, local_ts, remote_ts, rekey_at, expire_at)| ChildEntry {
                inbound_spi,
                outbound_spi,
                local_ts,
                remote_ts,
                rekey_at,
                expire_at,
            },
        )
    }

    fn datagram() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..48)
    }

    fn state() -> impl Strategy<Value = IkeSaState> {
        let ids =
            (any::<u64>(), any::<bool>(), any::<u64>(), any::<u64>(), sock(), sock(), any::<[bool; 2]>());
        let algs = (prf(), suite(), any::<u8>());
        let progress = (
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            proptest::option::of((datagram(), vec(datagram(), 0..4))),
            proptest::option::of(any::<u32>()),
        );
        let rest = (vec(child_entry(), 0..4), vec(ip(), 0..3), vec(ip(), 0..3), deadline(), deadline());
        (ids, algs, progress, rest).prop_map(
            |(
                (id, initiator, spi_i, spi_r, local, remote, [l, r]),
                (prf, suite, seed),
                (next_message_id, expected_request, iv_counter, last_exchange, fragment_size),
                (children, virtual_ips, assigned_ips, rekey_at, expire_at),
            )| {
                let (encr, integ) = algorithms(suite);
                IkeSaState {
                    id: IkeSaId(id),
                    initiator,
                    spi_i,
                    spi_r,
                    local,
                    remote,
                    prf,
                    encr,
                    integ,
                    nat: NatState { local_behind_nat: l, remote_behind_nat: r },
                    next_message_id,
                    expected_request,
                    iv_counter,
                    last_exchange,
                    fragment_size: fragment_size.map(|s| s as usize),
                    children,
                    virtual_ips,
                    assigned_ips,
                    rekey_at,
                    expire_at,
                    keys: keys(prf, suite, seed),
                }
            },
        )
    }

    fn child() -> impl Strategy<Value = (ChildSa, Option<Instant>, Option<Instant>)> {
        let ids = (any::<u64>(), sock(), sock(), any::<bool>(), any::<bool>(), any::<u32>(), any::<u32>());
        (ids, suite(), selectors(), selectors(), deadline(), deadline(), any::<u8>()).prop_map(
            |((ike, local, remote, udp_encap, esn, inbound_spi, outbound_spi), suite, l, r, ra, ea, seed)| {
                let (encr, integ) = algorithms(suite);
                let len = suite.encr_keymat_len() + suite.integ_key_len();
                let child = ChildSa {
                    ike_sa: IkeSaId(ike),
                    local,
                    remote,
                    udp_encap,
                    inbound_spi,
                    outbound_spi,
                    encr,
                    integ,
                    esn,
                    local_ts: l,
                    remote_ts: r,
                    inbound_keymat: key(len, seed),
                    outbound_keymat: key(len, seed ^ 0x80),
                };
                (child, ra, ea)
            },
        )
    }

    /// Field by field: `IkeSaState` is not `PartialEq` (it holds keys).
    fn assert_same_state(a: &IkeSaState, b: &IkeSaState) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.initiator, b.initiator);
        assert_eq!((a.spi_i, a.spi_r), (b.spi_i, b.spi_r));
        assert_eq!((a.local, a.remote), (b.local, b.remote));
        assert_eq!((a.prf, a.encr, a.integ), (b.prf, b.encr, b.integ));
        assert_eq!(a.nat, b.nat);
        assert_eq!(
            (a.next_message_id, a.expected_request, a.iv_counter),
            (b.next_message_id, b.expected_request, b.iv_counter)
        );
        assert_eq!(a.last_exchange, b.last_exchange);
        assert_eq!(a.fragment_size, b.fragment_size);
        assert_eq!(a.children, b.children);
        assert_eq!((&a.virtual_ips, &a.assigned_ips), (&b.virtual_ips, &b.assigned_ips));
        assert_eq!((a.rekey_at, a.expire_at), (b.rekey_at, b.expire_at));
        assert_eq!(a.keys.parts(), b.keys.parts());
    }

    fn assert_same_child(a: &ChildSa, b: &ChildSa) {
        assert_eq!(a.ike_sa, b.ike_sa);
        assert_eq!((a.local, a.remote, a.udp_encap), (b.local, b.remote, b.udp_encap));
        assert_eq!((a.inbound_spi, a.outbound_spi), (b.inbound_spi, b.outbound_spi));
        assert_eq!((a.encr, a.integ, a.esn), (b.encr, b.integ, b.esn));
        assert_eq!((&a.local_ts, &a.remote_ts), (&b.local_ts, &b.remote_ts));
        assert_eq!(a.inbound_keymat, b.inbound_keymat);
        assert_eq!(a.outbound_keymat, b.outbound_keymat);
    }

    proptest! {
        #[test]
        fn round_trips_ike_sa_state(s in state()) {
            let bytes = s.encode(&base());
            let back = IkeSaState::decode(bytes.expose(), &base()).expect("decodes");
            assert_same_state(&s, &back);
            prop_assert_eq!(back.encode(&base()), bytes);
        }

        #[test]
        fn round_trips_child_sa((child, rekey_at, expire_at) in child()) {
            let bytes = encode_child(&child, rekey_at, expire_at, &base());
            let (back, r, e) = decode_child(bytes.expose(), &base()).expect("decodes");
            assert_same_child(&child, &back);
            prop_assert_eq!((r, e), (rekey_at, expire_at));
            prop_assert_eq!(encode_child(&back, r, e, &base()), bytes);
        }

        #[test]
        fn rejects_every_truncation_and_trailing_octets(s in state(), (c, r, e) in child()) {
            for bytes in [s.encode(&base()), encode_child(&c, r, e, &base())] {
                let b = bytes.expose();
                for n in 0..b.len() {
                    prop_assert!(IkeSaState::decode(&b[..n], &base()).is_err());
                    prop_assert!(decode_child(&b[..n], &base()).is_err());
                }
                let mut longer = b.to_vec();
                longer.push(0);
                prop_assert!(IkeSaState::decode(&longer, &base()).is_err());
                prop_assert!(decode_child(&longer, &base()).is_err());
            }
        }

        #[test]
        fn never_panics_on_mutated_encodings(
            s in state(),
            (c, r, e) in child(),
            edits in vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            for bytes in [s.encode(&base()), encode_child(&c, r, e, &base())] {
                let mut b = bytes.expose().to_vec();
                for (at, v) in &edits {
                    let i = at % b.len();
                    b[i] = *v;
                }
                let _ = IkeSaState::decode(&b, &base());
                let _ = decode_child(&b, &base());
            }
        }

        #[test]
        fn never_panics_on_arbitrary_octets(kind in 0u8..4, tail in vec(any::<u8>(), 0..512)) {
            let mut b = vec![SYNC_FORMAT_VERSION, kind];
            b.extend_from_slice(&tail);
            let _ = IkeSaState::decode(&b, &base());
            let _ = decode_child(&b, &base());
            let _ = IkeSaState::decode(&tail, &base());
            let _ = decode_child(&tail, &base());
        }

        #[test]
        fn maps_instants_through_the_shared_base(ms in -3_600_000i64..1_000_000_000_000, skew in 0u64..1 << 40) {
            let a = base();
            // Node B's clock: another origin for the same shared time.
            let b = TimeBase { now: origin() + Duration::from_millis(skew), now_ms: NOW_MS };
            let on_a = at(ms);
            let shared = a.to_ms(on_a);
            prop_assert_eq!(shared, NOW_MS.wrapping_add_signed(ms));
            let on_b = b.to_instant(shared);
            prop_assert_eq!(b.to_ms(on_b), shared);
            prop_assert_eq!(on_b, on_a + Duration::from_millis(skew));
        }
    }

    /// A valid state with no deadlines, for the hand-made cases.
    fn sample() -> IkeSaState {
        let suite = SkSuite::Aead(AeadAlgorithm::Aes256Gcm16);
        let (encr, integ) = algorithms(suite);
        let addr = |o: u8| SocketAddr::from(([192, 0, 2, o], 500));
        IkeSaState {
            id: IkeSaId(7),
            initiator: false,
            spi_i: 1,
            spi_r: 7,
            local: addr(1),
            remote: addr(10),
            prf: PrfAlgorithm::HmacSha256,
            encr,
            integ,
            nat: NatState::default(),
            next_message_id: 0,
            expected_request: 2,
            iv_counter: 5,
            last_exchange: Some((vec![1; 40], vec![vec![2; 50]])),
            fragment_size: None,
            children: Vec::new(),
            virtual_ips: Vec::new(),
            assigned_ips: Vec::new(),
            rekey_at: None,
            expire_at: None,
            keys: keys(PrfAlgorithm::HmacSha256, suite, 1),
        }
    }

    #[test]
    fn rejects_other_format_versions() {
        let mut b = sample().encode(&base()).expose().to_vec();
        for v in (0..=u8::MAX).filter(|v| *v != SYNC_FORMAT_VERSION) {
            b[0] = v;
            assert_eq!(IkeSaState::decode(&b, &base()).err(), Some(Error::SyncVersion(v)));
            assert_eq!(decode_child(&b, &base()).err(), Some(Error::SyncVersion(v)));
        }
    }

    #[test]
    fn rejects_the_other_kind() {
        let b = sample().encode(&base());
        assert!(matches!(decode_child(b.expose(), &base()), Err(Error::InvalidSyncState(_))));
    }

    #[test]
    fn rejects_keys_that_do_not_fit_the_algorithms() {
        let mut s = sample();
        // SHA-384 wants 48-octet SK_d, SK_pi and SK_pr; these are 32.
        s.prf = PrfAlgorithm::HmacSha384;
        let err = IkeSaState::decode(s.encode(&base()).expose(), &base()).err();
        assert_eq!(err, Some(Error::InvalidSyncState("key length does not match the algorithms")));
        // AES-GCM without integrity is the only AEAD suite.
        let mut s = sample();
        s.integ = Some(IntegAlgorithm::HmacSha256_128);
        assert!(IkeSaState::decode(s.encode(&base()).expose(), &base()).is_err());
    }

    #[test]
    fn rejects_counts_over_the_limits() {
        let ts = TrafficSelector::any([10, 0, 0, 0].into(), [10, 0, 0, 255].into());
        let entry = ChildEntry {
            inbound_spi: 256,
            outbound_spi: 257,
            local_ts: vec![ts; MAX_SELECTORS],
            remote_ts: vec![ts],
            rekey_at: None,
            expire_at: None,
        };
        let mut s = sample();
        s.children = vec![entry.clone(); MAX_CHILDREN];
        assert!(IkeSaState::decode(s.encode(&base()).expose(), &base()).is_ok(), "at the limits");
        s.children[0].local_ts.push(ts);
        assert!(IkeSaState::decode(s.encode(&base()).expose(), &base()).is_err(), "one selector too many");
        let mut s = sample();
        s.children = vec![entry; MAX_CHILDREN + 1];
        assert!(IkeSaState::decode(s.encode(&base()).expose(), &base()).is_err(), "one child too many");
        let mut s = sample();
        s.virtual_ips = vec![ts.start_addr; MAX_ADDRESSES + 1];
        assert!(IkeSaState::decode(s.encode(&base()).expose(), &base()).is_err(), "too many addresses");
        let mut s = sample();
        s.last_exchange = Some((vec![0; MAX_DATAGRAM + 1], Vec::new()));
        assert!(IkeSaState::decode(s.encode(&base()).expose(), &base()).is_err(), "a datagram too long");
        let mut s = sample();
        s.last_exchange = Some((Vec::new(), vec![vec![0; 8]; MAX_FRAGMENTS + 1]));
        assert!(IkeSaState::decode(s.encode(&base()).expose(), &base()).is_err(), "too many fragments");
    }

    #[test]
    fn time_base_saturates_and_clamps() {
        let b = base();
        assert_eq!(b.to_ms(b.now), NOW_MS);
        assert_eq!(b.to_instant(NOW_MS), b.now);
        let zero = TimeBase { now: b.now, now_ms: 0 };
        assert_eq!(zero.to_ms(at(-1000)), 0, "before 0 saturates");
        let top = TimeBase { now: b.now, now_ms: u64::MAX - 5 };
        assert_eq!(top.to_ms(at(1000)), u64::MAX, "past u64::MAX saturates");
        // Far ends of the shared base: clamped instants, no panic.
        for base in [b, zero, top, TimeBase { now: b.now, now_ms: u64::MAX }] {
            for ms in [0, 1, NOW_MS, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
                let t = base.to_instant(ms);
                assert_eq!(t >= base.now, ms >= base.now_ms, "{ms} lands on the right side of now");
            }
        }
    }
}
