//! What a NIC would have finished: frames that a packet socket with
//! `PACKET_VNET_HDR` hands over as the sender's stack left them, described
//! by a `virtio_net_hdr`. A TCP or UDP "super-packet" (GSO, up to 64 KiB)
//! is cut into segments of `gso_size` octets of payload, each with its own
//! headers, and a checksum left to the hardware (`CHECKSUM_PARTIAL`: only
//! the pseudo-header sum is in place) is completed on request.
//!
//! Segments keep their transport checksum in that partial form (the
//! pseudo-header sum of the segment's length), so a node completes it only
//! for the packets it actually sends on (the serving node's plaintext before
//! encryption), never for those it only counts; see [`finish_checksum`].

use core::ops::Range;
use tandem_esp::wire::{checksum_add, checksum_finish, checksum_fold};

/// Octets of a `virtio_net_hdr` (without `num_buffers`).
pub(crate) const VNET_HDR_LEN: usize = 10;
/// Octets of an Ethernet header.
pub(crate) const ETH_LEN: usize = 14;

pub(crate) const F_NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_UDP: u8 = 3;
const GSO_TCPV6: u8 = 4;
pub(crate) const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;

/// A received frame's `virtio_net_hdr` (host byte order, as packet sockets
/// write it on little-endian hosts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VnetHdr {
    flags: u8,
    gso_type: u8,
    gso_size: u16,
    csum_start: u16,
    csum_offset: u16,
}

/// Where a transport checksum is left to finish, relative to the IP
/// packet: the sum covers `start..` and goes to `start + offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Partial {
    pub(crate) start: usize,
    pub(crate) offset: usize,
}

/// What to do with a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rx {
    /// A frame as on a wire, maybe with a checksum to finish.
    Frame(Option<Partial>),
    /// A super-packet: cut it with [`Segments`].
    Segment(Segments),
    /// Something this module cannot cut (UFO, unknown GSO types): drop.
    Unsupported,
}

impl VnetHdr {
    /// The header in `b`.
    pub(crate) fn parse(b: &[u8; VNET_HDR_LEN]) -> Self {
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        // b[2..4] is hdr_len, which senders fill loosely: the headers are
        // parsed instead.
        Self {
            flags: b[0],
            gso_type: b[1],
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    /// How to treat `frame` (Ethernet header included) that came with this
    /// header.
    pub(crate) fn classify(&self, frame: &[u8]) -> Rx {
        let partial = (self.flags & F_NEEDS_CSUM != 0)
            .then(|| usize::from(self.csum_start).checked_sub(ETH_LEN))
            .flatten()
            .map(|start| Partial { start, offset: usize::from(self.csum_offset) });
        match self.gso_type & !GSO_ECN {
            GSO_NONE => Rx::Frame(partial),
            GSO_TCPV4 | GSO_TCPV6 | GSO_UDP_L4 if self.gso_size > 0 => {
                Segments::new(frame, frame.len(), usize::from(self.gso_size))
                    .map_or(Rx::Unsupported, Rx::Segment)
            }
            GSO_UDP => Rx::Unsupported,
            _ => Rx::Unsupported,
        }
    }

    /// How many packets a frame of `len` octets that came with this header
    /// stands for, from its `head` alone (a frame trimmed to its headers):
    /// a super-packet's segments, else one.
    pub(crate) fn packets(&self, head: &[u8], len: usize) -> usize {
        match self.gso_type & !GSO_ECN {
            GSO_TCPV4 | GSO_TCPV6 | GSO_UDP_L4 if self.gso_size > 0 => {
                Segments::new(head, len, usize::from(self.gso_size)).map_or(1, |s| s.count())
            }
            _ => 1,
        }
    }
}

/// A TCP or UDP super-packet's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segments {
    /// Octets of Ethernet, IP and transport headers.
    headers: usize,
    /// Octets of the IP header (its options or extension headers included).
    ip_len: usize,
    ipv6: bool,
    tcp: bool,
    /// The super-packet's TCP flags.
    flags: u8,
    /// Octets of the payload as a whole and per segment.
    payload: usize,
    size: usize,
    /// The super-packet's IPv4 ID and TCP sequence number.
    id: u16,
    seq: u32,
    /// Sums computed once for all segments: the IPv4 header without its
    /// length, ID and checksum; the pseudo-header without its length.
    ip_sum: u32,
    pseudo: u32,
}

impl Segments {
    /// Parses the headers of the super-packet `frame` of `len` octets (at
    /// least its headers at hand); `None` for anything but IPv4 or IPv6
    /// (without extension headers) carrying TCP or UDP.
    fn new(frame: &[u8], len: usize, size: usize) -> Option<Self> {
        let ip = frame.get(ETH_LEN..)?;
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let (ipv6, ip_len, proto) = match (ethertype, ip.first()? >> 4) {
            (0x0800, 4) => (false, usize::from(ip[0] & 0x0f) * 4, *ip.get(9)?),
            (0x86dd, 6) => (true, 40, *ip.get(6)?),
            _ => return None,
        };
        let l4 = ip.get(ip_len..)?;
        let (tcp, l4_len, flags) = match proto {
            PROTO_TCP => (true, usize::from(l4.get(12)? >> 4) * 4, *l4.get(13)?),
            PROTO_UDP => (false, 8, 0),
            _ => return None,
        };
        let headers = ETH_LEN + ip_len + l4_len;
        let payload = len.checked_sub(headers)?;
        // A TCP header's data offset may claim less than the header's 20
        // octets; the segments' headers are written up to its checksum.
        if ip_len < 20 || l4_len < if tcp { 20 } else { 8 } || size == 0 || l4.len() < l4_len {
            return None;
        }
        let (id, ip_sum, pseudo) = if ipv6 {
            (0, 0, checksum_add(0, &ip[8..40]) + u32::from(proto))
        } else {
            let h = &ip[..ip_len];
            let ip_sum = checksum_add(0, &h[..2]) + checksum_add(0, &h[6..10]) + checksum_add(0, &h[12..]);
            (u16::from_be_bytes([h[4], h[5]]), ip_sum, checksum_add(0, &h[12..20]) + u32::from(proto))
        };
        let seq = if tcp { u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]) } else { 0 };
        Some(Self { headers, ip_len, ipv6, tcp, flags, payload, size, id, seq, ip_sum, pseudo })
    }

    /// How many segments the super-packet makes.
    pub(crate) fn count(&self) -> usize {
        self.payload.div_ceil(self.size).max(1)
    }

    /// Whether the segments are TCP (else UDP).
    pub(crate) fn is_tcp(&self) -> bool {
        self.tcp
    }

    /// Where segment `i`'s payload lies in the super-packet (from its
    /// Ethernet header on).
    pub(crate) fn payload(&self, i: usize) -> Range<usize> {
        let from = self.headers + i * self.size;
        from..from + self.size.min(self.payload.saturating_sub(i * self.size))
    }

    /// Octets of the largest segment's frame.
    pub(crate) fn max_frame(&self) -> usize {
        self.headers + self.size.min(self.payload)
    }

    /// Where the transport checksum of every segment is left to finish.
    pub(crate) fn partial(&self) -> Partial {
        Partial { start: self.ip_len, offset: if self.tcp { 16 } else { 6 } }
    }

    /// Writes segment `i` of `frame` (a frame: Ethernet header included)
    /// to the start of `out` and returns its length; 0 if `out` is too
    /// short. Its transport checksum is the partial one (the pseudo-header
    /// sum of its length; finish it with [`finish_checksum`]).
    pub(crate) fn write(&self, frame: &[u8], i: usize, out: &mut [u8]) -> usize {
        let body = self.payload(i);
        let len = self.headers + body.len();
        let (Some(dst), Some(head), Some(body)) =
            (out.get_mut(..len), frame.get(..self.headers), frame.get(body))
        else {
            return 0;
        };
        dst[..self.headers].copy_from_slice(head);
        dst[self.headers..].copy_from_slice(body);
        if self.fix(dst, i) { len } else { 0 }
    }

    /// Makes segment `i` of the super-packet at `buf[at..]` a frame where
    /// its payload lies, headers written over the end of the segment
    /// before it, and returns the frame's range. So segments must be taken
    /// in order, each done with (nothing left pointing into it) before the
    /// next is made; the super-packet's own headers stay intact. `None`
    /// if the super-packet does not lie within `buf` or its segments are
    /// shorter than its headers.
    pub(crate) fn in_place(&self, buf: &mut [u8], at: usize, i: usize) -> Option<Range<usize>> {
        if self.size < self.headers || at + self.headers + self.payload > buf.len() {
            return None;
        }
        let chunk = self.size.min(self.payload.saturating_sub(i * self.size));
        let start = at + i * self.size;
        let frame = start..start + self.headers + chunk;
        if i > 0 {
            buf.copy_within(at..at + self.headers, start);
        }
        self.fix(&mut buf[frame.clone()], i).then_some(frame)
    }

    /// Sets the headers of `seg`, segment `i` with the super-packet's
    /// headers, for its place and length.
    fn fix(&self, seg: &mut [u8], i: usize) -> bool {
        let len = seg.len();
        let last = i + 1 == self.count();
        let ip = &mut seg[ETH_LEN..];
        let ip_total = len - ETH_LEN;
        let l4_len = ip_total - self.ip_len;
        let Ok(l4_len16) = u16::try_from(l4_len) else { return false };
        if self.ipv6 {
            // The payload length counts extension headers, of which there
            // are none here.
            ip[4..6].copy_from_slice(&l4_len16.to_be_bytes());
        } else {
            let Ok(total) = u16::try_from(ip_total) else { return false };
            let id = self.id.wrapping_add(u16::try_from(i).unwrap_or(0));
            let h = checksum_finish(self.ip_sum + u32::from(total) + u32::from(id));
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[4..6].copy_from_slice(&id.to_be_bytes());
            ip[10..12].copy_from_slice(&h.to_be_bytes());
        }
        let pseudo = checksum_fold(self.pseudo + u32::from(l4_len16));
        let l4 = &mut ip[self.ip_len..];
        if self.tcp {
            let seq = self.seq.wrapping_add(u32::try_from(i * self.size).unwrap_or(0));
            l4[4..8].copy_from_slice(&seq.to_be_bytes());
            // FIN and PSH on the last segment only, CWR on the first only.
            let mut flags = self.flags;
            if !last {
                flags &= !0x09;
            }
            if i > 0 {
                flags &= !0x80;
            }
            l4[13] = flags;
            l4[16..18].copy_from_slice(&pseudo.to_be_bytes());
        } else {
            l4[4..6].copy_from_slice(&l4_len16.to_be_bytes());
            l4[6..8].copy_from_slice(&pseudo.to_be_bytes());
        }
        true
    }
}

/// The longest super-packet built: an IP packet of 64 KiB at most, with
/// its Ethernet header.
const MAX_SUPER: usize = ETH_LEN + 65_535;
/// Open flows looked at for a packet to join (the latest first).
const LOOKBACK: usize = 8;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;

/// Frames for a port, each copied once; with `merge` (the port takes
/// offload headers), consecutive TCP segments of one flow become one
/// super-packet as the kernel's GRO would merge them: same Ethernet, IP
/// and TCP headers but for lengths, IDs and checksums (ports, ACK number,
/// window and options alike), plain ACK segments in sequence, all of one
/// size but a shorter or PSH-flagged last, each with a valid checksum.
/// The super-packet goes out with a `virtio_net_hdr` asking for TCP
/// segmentation (GSO) and a checksum to finish, so the receiving stack
/// takes it as one packet; everything else goes out as it came.
pub(crate) struct Coalescer {
    bufs: Vec<Box<[u8]>>,
    /// One per buffer in use, in order.
    entries: Vec<Entry>,
    merge: bool,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    len: usize,
    /// A TCP segment with payload that others may join.
    flow: Option<Flow>,
}

#[derive(Clone, Copy, Debug)]
struct Flow {
    ipv6: bool,
    ip_len: usize,
    tcp_len: usize,
    /// Payload octets of every segment but the last.
    size: usize,
    next_seq: u32,
    segments: usize,
    /// Another segment may still join.
    open: bool,
}

/// A TCP segment's layout.
struct Tcp {
    ipv6: bool,
    ip_len: usize,
    tcp_len: usize,
    seq: u32,
    flags: u8,
    payload: usize,
}

impl Tcp {
    /// The TCP segment in `frame` (no IPv4 options or IPv6 extension
    /// headers, not a fragment), its checksum checked.
    fn parse(frame: &[u8]) -> Option<Self> {
        let ip = frame.get(ETH_LEN..)?;
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let (ipv6, ip_len, total) = match (ethertype, ip.first()?) {
            (0x0800, 0x45) if ip.get(9) == Some(&PROTO_TCP) && ip.get(6)? & 0x3f == 0 && ip[7] == 0 => {
                (false, 20, usize::from(u16::from_be_bytes([ip[2], ip[3]])))
            }
            (0x86dd, v) if v >> 4 == 6 && ip.get(6) == Some(&PROTO_TCP) => {
                (true, 40, 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]])))
            }
            _ => return None,
        };
        let tcp = ip.get(ip_len..total)?;
        let tcp_len = usize::from(tcp.get(12)? >> 4) * 4;
        let payload = tcp.len().checked_sub(tcp_len)?;
        if tcp_len < 20 || ip.len() != total {
            return None;
        }
        let addrs = if ipv6 { &ip[8..40] } else { &ip[12..20] };
        let len = u16::try_from(tcp.len()).ok()?;
        let pseudo = checksum_add(0, addrs) + u32::from(PROTO_TCP) + u32::from(len);
        if checksum_fold(checksum_add(pseudo, tcp)) != 0xffff {
            return None;
        }
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        Some(Self { ipv6, ip_len, tcp_len, seq, flags: tcp[13], payload })
    }
}

impl Coalescer {
    /// Room for `n` frames (or super-packets); merging TCP with `merge`.
    pub(crate) fn new(n: usize, merge: bool) -> Self {
        let n = n.max(1);
        Self {
            bufs: (0..n).map(|_| vec![0u8; MAX_SUPER].into_boxed_slice()).collect(),
            entries: Vec::with_capacity(n),
            merge,
        }
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `frame` (copied), joining it to a super-packet if it can.
    /// `false`: no room (send what waits, then push again).
    pub(crate) fn push(&mut self, frame: &[u8]) -> bool {
        let tcp = if self.merge { Tcp::parse(frame).filter(|t| t.payload > 0) } else { None };
        if let Some(t) = &tcp
            && self.join(frame, t)
        {
            return true;
        }
        let Some(buf) = self.bufs.get_mut(self.entries.len()) else { return false };
        let Some(dst) = buf.get_mut(..frame.len()) else {
            // Longer than any frame a port takes: dropped.
            return true;
        };
        dst.copy_from_slice(frame);
        let flow = tcp.map(|t| Flow {
            ipv6: t.ipv6,
            ip_len: t.ip_len,
            tcp_len: t.tcp_len,
            size: t.payload,
            next_seq: t.seq.wrapping_add(u32::try_from(t.payload).unwrap_or(0)),
            segments: 1,
            open: t.flags == TCP_ACK,
        });
        self.entries.push(Entry { len: frame.len(), flow });
        true
    }

    /// Appends `frame`'s payload to the open super-packet of its flow, if
    /// there is one it may join; closes a flow it may not join.
    fn join(&mut self, frame: &[u8], t: &Tcp) -> bool {
        let n = self.entries.len();
        for i in (n.saturating_sub(LOOKBACK)..n).rev() {
            let Entry { len, flow: Some(f) } = self.entries[i] else { continue };
            let head = &self.bufs[i][..ETH_LEN + f.ip_len + f.tcp_len];
            if !f.open || !same_flow(head, frame, &f, t) {
                continue;
            }
            let joins = t.seq == f.next_seq
                && t.payload <= f.size
                && t.flags & !TCP_PSH == TCP_ACK
                && len + t.payload <= MAX_SUPER;
            let e = &mut self.entries[i];
            let Some(f) = e.flow.as_mut() else { continue };
            if !joins {
                f.open = false;
                return false;
            }
            let from = ETH_LEN + t.ip_len + t.tcp_len;
            self.bufs[i][len..len + t.payload].copy_from_slice(&frame[from..]);
            e.len += t.payload;
            f.segments += 1;
            f.next_seq = f.next_seq.wrapping_add(u32::try_from(t.payload).unwrap_or(0));
            if t.flags & TCP_PSH != 0 {
                self.bufs[i][ETH_LEN + f.ip_len + 13] |= TCP_PSH;
            }
            f.open = t.payload == f.size && t.flags & TCP_PSH == 0;
            return true;
        }
        false
    }

    /// The frames waiting, each with the `virtio_net_hdr` to send it with
    /// (empty for a frame as it came), super-packets' headers made whole.
    /// Call [`Self::clear`] once they are sent.
    pub(crate) fn frames(&mut self) -> Vec<([u8; VNET_HDR_LEN], &[u8])> {
        let mut out = Vec::with_capacity(self.entries.len());
        for (e, buf) in self.entries.iter().zip(self.bufs.iter_mut()) {
            let frame = &mut buf[..e.len];
            let hdr = match e.flow {
                Some(f) if f.segments > 1 => super_packet(frame, &f),
                _ => [0; VNET_HDR_LEN],
            };
            out.push((hdr, &buf[..e.len]));
        }
        out
    }

    /// Forgets the frames (sent).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Whether `frame` (segment `t`) belongs to the flow whose first segment's
/// headers are `head`: all headers alike but for lengths, IDs, checksums,
/// sequence numbers and the PSH flag.
fn same_flow(head: &[u8], frame: &[u8], f: &Flow, t: &Tcp) -> bool {
    if t.ipv6 != f.ipv6
        || t.tcp_len != f.tcp_len
        || frame.len() < head.len()
        || head[..ETH_LEN] != frame[..ETH_LEN]
    {
        return false;
    }
    let (a, b) = (&head[ETH_LEN..], &frame[ETH_LEN..]);
    let ip_alike = if f.ipv6 {
        // Version, traffic class, flow label; next header, hop limit,
        // addresses.
        a[..4] == b[..4] && a[6..40] == b[6..40]
    } else {
        // Version, IHL, ToS; flags (DF); TTL, protocol; addresses.
        a[..2] == b[..2] && a[6] == b[6] && a[8..10] == b[8..10] && a[12..20] == b[12..20]
    };
    let (ta, tb) = (&a[f.ip_len..], &b[f.ip_len..]);
    // Ports, ACK number, data offset, window, options; the flags apart.
    ip_alike
        && ta[..4] == tb[..4]
        && ta[8..13] == tb[8..13]
        && ta[14..16] == tb[14..16]
        && ta[20..] == tb[20..f.tcp_len]
}

/// Makes `frame` (a super-packet of the flow `f`) whole: IP lengths, the
/// IPv4 header checksum, the TCP checksum left partial; and its header.
fn super_packet(frame: &mut [u8], f: &Flow) -> [u8; VNET_HDR_LEN] {
    let ip = &mut frame[ETH_LEN..];
    let tcp_total = ip.len() - f.ip_len;
    // At most MAX_SUPER - ETH_LEN octets: fits.
    let tcp_total16 = u16::try_from(tcp_total).unwrap_or(u16::MAX);
    let pseudo = if f.ipv6 {
        ip[4..6].copy_from_slice(&tcp_total16.to_be_bytes());
        checksum_add(0, &ip[8..40])
    } else {
        let total = u16::try_from(ip.len()).unwrap_or(u16::MAX);
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let h = checksum_finish(checksum_add(0, &ip[..20]));
        ip[10..12].copy_from_slice(&h.to_be_bytes());
        checksum_add(0, &ip[12..20])
    };
    let partial = checksum_fold(pseudo + u32::from(PROTO_TCP) + u32::from(tcp_total16));
    ip[f.ip_len + 16..f.ip_len + 18].copy_from_slice(&partial.to_be_bytes());
    let mut h = [0u8; VNET_HDR_LEN];
    h[0] = F_NEEDS_CSUM;
    h[1] = if f.ipv6 { GSO_TCPV6 } else { GSO_TCPV4 };
    let word = |v: usize| u16::try_from(v).unwrap_or(u16::MAX).to_ne_bytes();
    h[2..4].copy_from_slice(&word(ETH_LEN + f.ip_len + f.tcp_len));
    h[4..6].copy_from_slice(&word(f.size));
    h[6..8].copy_from_slice(&word(ETH_LEN + f.ip_len));
    h[8..10].copy_from_slice(&word(16));
    h
}

/// The head of an IP packet that a socket filter cut short, copied to
/// `out` (at most its length) and made a packet of its own: its length
/// field says what was kept, so a parser takes its headers. `None` if the
/// head holds no whole IPv4 or IPv6 header.
pub(crate) fn head_packet<'a>(head: &[u8], out: &'a mut [u8]) -> Option<&'a [u8]> {
    let n = head.len().min(out.len());
    let p = &mut out[..n];
    p.copy_from_slice(&head[..n]);
    match p.first()? >> 4 {
        4 if n >= 20 && usize::from(p[0] & 0x0f) * 4 <= n => {
            p[2..4].copy_from_slice(&u16::try_from(n).ok()?.to_be_bytes());
        }
        6 if n >= 40 => p[4..6].copy_from_slice(&u16::try_from(n - 40).ok()?.to_be_bytes()),
        _ => return None,
    }
    Some(p)
}

/// Completes the checksum the sender left partial in the IP packet
/// `packet` (what a NIC does for `CHECKSUM_PARTIAL`): the ones'-complement
/// sum of `packet[p.start..]`, which includes the pseudo-header sum already
/// in the checksum field, goes complemented into the field. A UDP checksum
/// of 0 is sent as 0xffff. Nothing happens if the offsets lie outside the
/// packet.
pub(crate) fn finish_checksum(packet: &mut [u8], p: Partial) {
    let at = p.start + p.offset;
    if at + 2 > packet.len() {
        return;
    }
    let c = checksum_finish(checksum_add(0, &packet[p.start..]));
    let c = if c == 0 { 0xffff } else { c };
    packet[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP frame with `payload` octets, checksums complete.
    fn tcp4(payload: usize, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; ETH_LEN + 20 + 20 + payload];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let total = u16::try_from(40 + payload).expect("fits");
        let ip = &mut f[ETH_LEN..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = PROTO_TCP;
        ip[12..16].copy_from_slice(&[198, 51, 100, 10]);
        ip[16..20].copy_from_slice(&[192, 0, 2, 10]);
        let h = checksum_finish(checksum_add(0, &ip[..20]));
        ip[10..12].copy_from_slice(&h.to_be_bytes());
        let tcp = &mut ip[20..];
        tcp[0..2].copy_from_slice(&5201u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        for (i, b) in tcp[20..].iter_mut().enumerate() {
            *b = u8::try_from(i % 251).expect("fits");
        }
        complete(&mut f);
        f
    }

    /// Sets the TCP/UDP checksum of an IPv4 frame from scratch.
    fn complete(f: &mut [u8]) {
        let ip = &mut f[ETH_LEN..];
        let l4 = u16::try_from(ip.len() - 20).expect("fits");
        let off = if ip[9] == PROTO_TCP { 16 } else { 6 };
        let pseudo = checksum_add(0, &ip[12..20]) + u32::from(ip[9]) + u32::from(l4);
        ip[20 + off..22 + off].copy_from_slice(&[0, 0]);
        let c = checksum_finish(checksum_add(pseudo, &ip[20..]));
        ip[20 + off..22 + off].copy_from_slice(&c.to_be_bytes());
    }

    fn checksum_ok(f: &[u8]) -> bool {
        let ip = &f[ETH_LEN..];
        let l4 = u16::try_from(ip.len() - 20).expect("fits");
        let pseudo = checksum_add(0, &ip[12..20]) + u32::from(ip[9]) + u32::from(l4);
        checksum_fold(checksum_add(0, &ip[..20])) == 0xffff
            && checksum_fold(checksum_add(pseudo, &ip[20..])) == 0xffff
    }

    fn hdr(flags: u8, gso_type: u8, gso_size: u16, csum_start: u16, csum_offset: u16) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = flags;
        b[1] = gso_type;
        b[4..6].copy_from_slice(&gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&csum_offset.to_ne_bytes());
        b
    }

    #[test]
    fn finishes_a_partial_checksum() {
        let mut f = tcp4(1000, 0x18);
        let want = f.clone();
        // What the sender's stack leaves: the pseudo-header sum.
        let ip = &mut f[ETH_LEN..];
        let pseudo = checksum_fold(checksum_add(0, &ip[12..20]) + u32::from(PROTO_TCP) + 1020);
        ip[36..38].copy_from_slice(&pseudo.to_be_bytes());
        let h = VnetHdr::parse(&hdr(F_NEEDS_CSUM, GSO_NONE, 0, 34, 16));
        let Rx::Frame(Some(p)) = h.classify(&f) else { panic!("a partial checksum") };
        assert_eq!(p, Partial { start: 20, offset: 16 });
        finish_checksum(&mut f[ETH_LEN..], p);
        assert_eq!(f, want);
        assert_eq!(VnetHdr::default().classify(&f), Rx::Frame(None));
    }

    #[test]
    fn refuses_a_tcp_header_shorter_than_twenty_octets() {
        // Found by the offload_frame fuzz target: a data offset of 4 (16
        // octets) made the segments' checksum write run past the header.
        let mut f = tcp4(3000, 0x18);
        f[ETH_LEN + 20 + 12] = 4 << 4;
        let h = VnetHdr::parse(&hdr(F_NEEDS_CSUM, GSO_TCPV4, 1448, 34, 16));
        assert_eq!(h.classify(&f), Rx::Unsupported);
    }

    #[test]
    fn makes_a_packet_of_a_head() {
        let f = tcp4(3000, 0x18);
        let mut out = [0u8; 120];
        let p = head_packet(&f[ETH_LEN..], &mut out).expect("an IPv4 head");
        assert_eq!((p.len(), u16::from_be_bytes([p[2], p[3]])), (120, 120));
        assert_eq!(&p[4..], &f[ETH_LEN + 4..ETH_LEN + 120]);
        let mut v6 = vec![0u8; 200];
        v6[0] = 0x60;
        let p = head_packet(&v6, &mut out).expect("an IPv6 head");
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 80);
        // Too short for its header, or not IP.
        assert!(head_packet(&f[ETH_LEN..ETH_LEN + 19], &mut out).is_none());
        let mut long = f[ETH_LEN..ETH_LEN + 40].to_vec();
        long[0] = 0x4f;
        assert!(head_packet(&long, &mut out).is_none());
        assert!(head_packet(&v6[..39], &mut out).is_none());
        assert!(head_packet(&[0x50; 64], &mut out).is_none());
        assert!(head_packet(&[], &mut out).is_none());
    }

    #[test]
    fn counts_the_packets_of_a_trimmed_super_packet() {
        let f = tcp4(3000, 0x18);
        let h = VnetHdr::parse(&hdr(F_NEEDS_CSUM, GSO_TCPV4, 1448, 34, 16));
        assert_eq!(h.packets(&f[..128], f.len()), 3);
        assert_eq!(h.packets(&f[..128], f.len() + 1448), 4);
        // Without an offload header, or with headers cut off: one.
        assert_eq!(VnetHdr::default().packets(&f[..128], f.len()), 1);
        assert_eq!(h.packets(&f[..30], f.len()), 1);
    }

    #[test]
    fn segments_a_tcp_super_packet() {
        // 3000 octets of payload at an MSS of 1448: 1448 + 1448 + 104.
        let f = tcp4(3000, 0x19); // FIN, PSH, ACK
        let h = VnetHdr::parse(&hdr(F_NEEDS_CSUM, GSO_TCPV4, 1448, 34, 16));
        let Rx::Segment(s) = h.classify(&f) else { panic!("a super-packet") };
        assert_eq!((s.count(), s.max_frame(), s.is_tcp()), (3, 54 + 1448, true));
        let mut payload = Vec::new();
        for i in 0..s.count() {
            let mut out = vec![0u8; 2000];
            let n = s.write(&f, i, &mut out);
            out.truncate(n);
            finish_checksum(&mut out[ETH_LEN..], s.partial());
            assert!(checksum_ok(&out), "segment {i}");
            let ip = &out[ETH_LEN..];
            assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), n - ETH_LEN);
            assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 0x1234 + u16::try_from(i).expect("small"));
            let seq = u32::from_be_bytes([ip[24], ip[25], ip[26], ip[27]]);
            assert_eq!(seq, 1000 + 1448 * u32::try_from(i).expect("small"));
            assert_eq!(ip[33], if i == 2 { 0x19 } else { 0x10 }, "FIN and PSH on the last only");
            payload.extend_from_slice(&ip[40..]);
        }
        assert_eq!(payload, f[54..]);
    }

    /// A UDP super-packet of 2500 octets (to 4500), and its offload header
    /// asking for 1200-octet segments.
    fn udp4_super() -> (Vec<u8>, VnetHdr) {
        let mut f = tcp4(0, 0);
        f.truncate(ETH_LEN + 20);
        f[ETH_LEN + 9] = PROTO_UDP;
        f.extend_from_slice(&[0x11, 0x94, 0x11, 0x94, 0, 0, 0, 0]);
        f.extend((0..2500).map(|i| u8::try_from(i % 200).expect("fits")));
        (f, VnetHdr::parse(&hdr(F_NEEDS_CSUM, GSO_UDP_L4, 1200, 34, 6)))
    }

    #[test]
    fn segments_a_udp_super_packet() {
        let (f, h) = udp4_super();
        let Rx::Segment(s) = h.classify(&f) else { panic!("a super-packet") };
        assert_eq!(s.count(), 3);
        for i in 0..3 {
            let mut out = vec![0u8; 1500];
            let n = s.write(&f, i, &mut out);
            assert_eq!(n, 42 + if i == 2 { 100 } else { 1200 });
            out.truncate(n);
            finish_checksum(&mut out[ETH_LEN..], s.partial());
            assert!(checksum_ok(&out), "segment {i}");
            assert_eq!(usize::from(u16::from_be_bytes([out[38], out[39]])), n - 34, "UDP length");
            assert_eq!(out[42..], f[s.payload(i)], "segment {i} carries payload({i})");
        }
        assert!(!s.is_tcp());
        assert_eq!((s.payload(0), s.payload(2)), (42..1242, 2442..2542));
    }

    /// Segment `i` of 1000 octets of a flow, as a sender would send it.
    fn seg(i: u32, payload: usize, flags: u8) -> Vec<u8> {
        let mut f = tcp4(payload, flags);
        let tcp = &mut f[ETH_LEN + 20..];
        tcp[4..8].copy_from_slice(&(1000 + 1000 * i).to_be_bytes());
        tcp[8..12].copy_from_slice(&77u32.to_be_bytes());
        tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
        complete(&mut f);
        f
    }

    #[test]
    fn coalesces_a_flow_into_one_super_packet() {
        let mut c = Coalescer::new(4, true);
        for i in 0..3 {
            assert!(c.push(&seg(i, 1000, 0x10)));
        }
        assert!(c.push(&seg(3, 400, 0x18))); // shorter, PSH: the last
        assert!(c.push(&seg(4, 1000, 0x10))); // after PSH: a new one
        let frames = c.frames();
        assert_eq!(frames.len(), 2);
        let (h, f) = &frames[0];
        assert_eq!(f.len(), 54 + 3400);
        let v = VnetHdr::parse(h);
        assert_eq!(
            (v.flags, v.gso_type, v.gso_size, v.csum_start, v.csum_offset),
            (1, GSO_TCPV4, 1000, 34, 16)
        );
        // Cut again, the segments are the ones sent.
        let Rx::Segment(s) = v.classify(f) else { panic!("a super-packet") };
        for i in 0..4 {
            let mut out = vec![0u8; 1500];
            let n = s.write(f, i, &mut out);
            out.truncate(n);
            finish_checksum(&mut out[ETH_LEN..], s.partial());
            let want = seg(
                u32::try_from(i).expect("small"),
                if i == 3 { 400 } else { 1000 },
                if i == 3 { 0x18 } else { 0x10 },
            );
            // IDs differ (the sender's were all alike): compare the rest.
            assert_eq!(out[..18], want[..18]);
            assert_eq!(out[20..24], want[20..24]);
            assert_eq!(out[26..], want[26..], "segment {i}");
        }
        assert_eq!(frames[1].0, [0; VNET_HDR_LEN], "a single segment goes as it came");
        assert_eq!(frames[1].1, &seg(4, 1000, 0x10)[..]);
        drop(frames);
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn keeps_apart_what_gro_would() {
        let mut c = Coalescer::new(8, true);
        assert!(c.push(&seg(0, 1000, 0x10)));
        let gap = seg(2, 1000, 0x10); // a hole in the sequence
        assert!(c.push(&gap));
        let mut bad = seg(3, 1000, 0x10);
        bad[60] ^= 1; // a corrupt checksum never joins
        assert!(c.push(&bad));
        let mut window = seg(4, 1000, 0x10);
        window[ETH_LEN + 20 + 15] ^= 1;
        complete(&mut window);
        assert!(c.push(&window));
        let udp = {
            let mut u = seg(5, 1000, 0x10);
            u[ETH_LEN + 9] = PROTO_UDP;
            u
        };
        assert!(c.push(&udp));
        assert_eq!(c.frames().len(), 5);
        assert!(c.frames().iter().all(|(h, _)| *h == [0; VNET_HDR_LEN]));
        c.clear();
        // Without offload headers nothing merges; a full coalescer says so.
        let mut c = Coalescer::new(1, false);
        assert!(c.push(&seg(0, 1000, 0x10)));
        assert!(!c.push(&seg(1, 1000, 0x10)));
    }

    #[test]
    fn cuts_segments_in_place() {
        let (f, h) = udp4_super();
        let Rx::Segment(s) = h.classify(&f) else { panic!("a super-packet") };
        let mut want = Vec::new();
        for i in 0..3 {
            let mut out = vec![0u8; 1500];
            let n = s.write(&f, i, &mut out);
            out.truncate(n);
            want.push(out);
        }
        let mut buf = vec![0u8; 100];
        buf.extend_from_slice(&f);
        for (i, w) in want.iter().enumerate() {
            let r = s.in_place(&mut buf, 100, i).expect("in place");
            assert_eq!(&buf[r], &w[..], "segment {i}");
        }
        assert_eq!(s.in_place(&mut buf[..200], 100, 0), None, "outside the buffer");
    }

    #[test]
    fn rejects_what_it_cannot_cut() {
        let f = tcp4(100, 0x10);
        assert_eq!(VnetHdr::parse(&hdr(0, GSO_UDP, 1000, 0, 0)).classify(&f), Rx::Unsupported);
        assert_eq!(VnetHdr::parse(&hdr(0, 9, 1000, 0, 0)).classify(&f), Rx::Unsupported);
        assert_eq!(VnetHdr::parse(&hdr(0, GSO_TCPV4, 1000, 0, 0)).classify(&f[..20]), Rx::Unsupported);
        let s = match VnetHdr::parse(&hdr(0, GSO_TCPV4, 40, 0, 0)).classify(&f) {
            Rx::Segment(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.count(), 3);
        assert_eq!(s.write(&f, 0, &mut [0u8; 10]), 0, "too short an output");
        // A checksum offset before the IP header is ignored.
        assert_eq!(VnetHdr::parse(&hdr(F_NEEDS_CSUM, 0, 0, 4, 16)).classify(&f), Rx::Frame(None));
    }
}
