//! The security association database: inbound SAs keyed by SPI, outbound
//! SAs behind small handles, and the receive path from an outer packet to
//! its plaintext.

use crate::Error;
use crate::sa::{Decapsulated, InboundSa, Mode, OutboundSa};
use crate::wire::{self, IKE_PORT, IpHeader, NAT_T_PORT, PROTO_ESP, PROTO_UDP, UDP_HEADER_LEN, UdpEncapKind};
use core::hash::{BuildHasher, Hasher};
use core::ops::Range;
use std::collections::HashMap;

/// Handle of an outbound SA in a [`Sad`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutboundId {
    index: u32,
    generation: u32,
}

/// What an outer IP packet turned out to be on the receive path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// ESP that decapsulated into plaintext.
    Plaintext(Decapsulated),
    /// An IKE message (UDP/500, or UDP/4500 behind the non-ESP marker): the
    /// range of the IKE message within the buffer.
    Ike(Range<usize>),
    /// A NAT-keepalive: nothing to do.
    NatKeepalive,
}

/// The SAD: all of a node's ESP SAs.
pub struct Sad {
    inbound: HashMap<u32, InboundSa, SpiHashBuilder>,
    outbound: Vec<(u32, Option<OutboundSa>)>,
    free: Vec<u32>,
    unknown_spi: u64,
}

impl Sad {
    /// An empty SAD. `hash_seed` keys the SPI hash (take it from the RNG).
    pub fn new(hash_seed: u64) -> Self {
        Self {
            inbound: HashMap::with_hasher(SpiHashBuilder(hash_seed)),
            outbound: Vec::new(),
            free: Vec::new(),
            unknown_spi: 0,
        }
    }

    /// Installs an inbound SA under its SPI.
    pub fn insert_inbound(&mut self, sa: InboundSa) -> Result<(), Error> {
        let spi = sa.spi();
        if self.inbound.contains_key(&spi) {
            return Err(Error::DuplicateSpi(spi));
        }
        self.inbound.insert(spi, sa);
        Ok(())
    }

    /// Removes and returns the inbound SA with `spi`.
    pub fn remove_inbound(&mut self, spi: u32) -> Option<InboundSa> {
        self.inbound.remove(&spi)
    }

    /// The inbound SA with `spi`.
    pub fn inbound(&self, spi: u32) -> Option<&InboundSa> {
        self.inbound.get(&spi)
    }

    /// The inbound SA with `spi`, mutably.
    pub fn inbound_mut(&mut self, spi: u32) -> Option<&mut InboundSa> {
        self.inbound.get_mut(&spi)
    }

    /// Every inbound SA.
    pub fn inbound_sas(&self) -> impl Iterator<Item = &InboundSa> {
        self.inbound.values()
    }

    /// Installs an outbound SA and returns its handle.
    pub fn insert_outbound(&mut self, sa: OutboundSa) -> OutboundId {
        if let Some(index) = self.free.pop() {
            let slot = &mut self.outbound[index as usize];
            slot.1 = Some(sa);
            OutboundId { index, generation: slot.0 }
        } else {
            let index = u32::try_from(self.outbound.len()).expect("fewer than 2^32 outbound SAs");
            self.outbound.push((0, Some(sa)));
            OutboundId { index, generation: 0 }
        }
    }

    /// Removes and returns an outbound SA; its handle becomes stale.
    pub fn remove_outbound(&mut self, id: OutboundId) -> Option<OutboundSa> {
        let slot = self.outbound.get_mut(id.index as usize)?;
        if slot.0 != id.generation {
            return None;
        }
        let sa = slot.1.take()?;
        slot.0 = slot.0.wrapping_add(1);
        self.free.push(id.index);
        Some(sa)
    }

    /// The outbound SA behind `id`, if it is still installed.
    pub fn outbound(&self, id: OutboundId) -> Option<&OutboundSa> {
        match self.outbound.get(id.index as usize) {
            Some((g, Some(sa))) if *g == id.generation => Some(sa),
            _ => None,
        }
    }

    /// The outbound SA behind `id`, mutably.
    pub fn outbound_mut(&mut self, id: OutboundId) -> Option<&mut OutboundSa> {
        match self.outbound.get_mut(id.index as usize) {
            Some((g, Some(sa))) if *g == id.generation => Some(sa),
            _ => None,
        }
    }

    /// Every outbound SA with its handle.
    pub fn outbound_sas(&self) -> impl Iterator<Item = (OutboundId, &OutboundSa)> {
        self.outbound.iter().enumerate().filter_map(|(i, (g, sa))| {
            // The slab never grows past u32::MAX entries (see insert_outbound).
            sa.as_ref().map(|sa| (OutboundId { index: i as u32, generation: *g }, sa))
        })
    }

    /// Packets dropped because no inbound SA had their SPI.
    pub fn unknown_spi_drops(&self) -> u64 {
        self.unknown_spi
    }

    /// Decapsulates the ESP packet at `buf[esp]` (SPI to ICV, as received on
    /// a UDP/4500 or raw ESP socket) with the SA its SPI names.
    pub fn decapsulate(&mut self, buf: &mut [u8], esp: Range<usize>) -> Result<Decapsulated, Error> {
        let spi = match buf.get(esp.clone()) {
            Some([a, b, c, d, ..]) => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => return Err(Error::ShortPacket),
        };
        match self.inbound.get_mut(&spi) {
            Some(sa) => sa.decapsulate(buf, esp),
            None => {
                self.unknown_spi += 1;
                Err(Error::UnknownSpi(spi))
            }
        }
    }

    /// The receive path for a whole outer IP packet at `buf[packet]` (from a
    /// raw L2/L3 port): ESP, UDP-encapsulated ESP, IKE or a NAT-keepalive.
    /// In transport mode the IP header is moved up to the plaintext and
    /// rewritten, so the result is again a whole IP packet.
    pub fn receive(&mut self, buf: &mut [u8], packet: Range<usize>) -> Result<Received, Error> {
        let outer = IpHeader::parse(buf.get(packet.clone()).ok_or(Error::ShortPacket)?)?;
        if outer.fragment {
            return Err(Error::Malformed("fragmented outer IP packet"));
        }
        let payload = packet.start + outer.header_len..packet.start + outer.total_len;
        let esp = match outer.protocol {
            PROTO_ESP => payload,
            PROTO_UDP => {
                if payload.len() < UDP_HEADER_LEN {
                    return Err(Error::ShortPacket);
                }
                let u = &buf[payload.clone()];
                let dport = u16::from_be_bytes([u[2], u[3]]);
                let ulen = usize::from(u16::from_be_bytes([u[4], u[5]]));
                if ulen < UDP_HEADER_LEN || ulen > payload.len() {
                    return Err(Error::Malformed("UDP"));
                }
                let body = payload.start + UDP_HEADER_LEN..payload.start + ulen;
                if dport == IKE_PORT {
                    return Ok(Received::Ike(body));
                }
                if dport != NAT_T_PORT {
                    return Err(Error::Malformed("not ESP"));
                }
                match wire::classify_udp_encap(&buf[body.clone()])? {
                    UdpEncapKind::NatKeepalive => return Ok(Received::NatKeepalive),
                    UdpEncapKind::Ike(r) => {
                        return Ok(Received::Ike(body.start + r.start..body.start + r.end));
                    }
                    UdpEncapKind::Esp => body,
                }
            }
            _ => return Err(Error::Malformed("not ESP")),
        };
        let mut d = self.decapsulate(buf, esp)?;
        let transport = self.inbound.get(&d.spi).is_some_and(|sa| sa.mode() == Mode::Transport);
        if transport {
            let hl = outer.header_len;
            let start = d.range.start.checked_sub(hl).ok_or(Error::NoRoom)?;
            buf.copy_within(packet.start..packet.start + hl, start);
            let total = hl + d.range.len();
            if let Err(e) = wire::rewrite_ip(&mut buf[start..start + total], d.next_header, total) {
                if let Some(sa) = self.inbound.get_mut(&d.spi) {
                    sa.record_drop(&e);
                }
                return Err(e);
            }
            d.range = start..start + total;
        }
        Ok(Received::Plaintext(d))
    }
}

impl core::fmt::Debug for Sad {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sad")
            .field("inbound", &self.inbound.len())
            .field("outbound", &(self.outbound.len() - self.free.len()))
            .finish()
    }
}

/// A keyed multiplicative hash for SPIs: SPIs are random, so one multiply
/// mixes enough, and the seed keeps bucket positions unpredictable. For
/// any map keyed by inbound SPI on a packet path.
#[derive(Clone, Copy, Debug)]
pub struct SpiHashBuilder(u64);

impl SpiHashBuilder {
    /// A hash keyed by `seed` (take it from the RNG).
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
}

impl BuildHasher for SpiHashBuilder {
    type Hasher = SpiHasher;
    fn build_hasher(&self) -> SpiHasher {
        SpiHasher(self.0)
    }
}

/// See [`SpiHashBuilder`].
#[derive(Debug)]
pub struct SpiHasher(u64);

impl Hasher for SpiHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u32(u32::from(*b));
        }
    }

    fn write_u32(&mut self, v: u32) {
        let h = (self.0 ^ u64::from(v)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }
}
