//! UDP segmentation offload on the way out: consecutive ESP-in-UDP frames
//! to one peer leave as one UDP GSO super-packet, as a UDP socket with
//! `UDP_SEGMENT` would send them. The message is the frames' common
//! headers made whole (lengths, checksums) followed by each frame's UDP
//! payload where it lies, with a `virtio_net_hdr` asking the kernel to
//! cut it again (`GSO_UDP_L4`) and to finish each datagram's checksum.
//!
//! So the stack behind the port (a veth peer's bridge, routing and socket,
//! a NIC's driver) handles one packet where there were dozens; a receiver
//! with UDP GRO reads them in one go.

use super::frames::{ETH_LEN, F_NEEDS_CSUM, GSO_UDP_L4, PROTO_UDP, VNET_HDR_LEN};
use tandem_esp::wire::{checksum_add, checksum_finish, checksum_fold};

/// The most datagrams in one super-packet (the kernel's
/// `UDP_MAX_SEGMENTS` of older kernels).
pub(crate) const MAX_SEGMENTS: usize = 64;
/// Octets of UDP payload a super-packet may carry: its IP packet's length
/// must fit 16 bits (the IPv4 total length or the IPv6 payload length).
const MAX_PAYLOAD: usize = 65_535 - 20 - 8;
/// The longest common head: Ethernet, IPv6 and UDP headers.
const MAX_HEAD: usize = ETH_LEN + 40 + 8;
const UDP_LEN: usize = 8;

/// A run of frames that leaves as one message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    /// The run is `frames[first..first + count]`.
    pub(crate) first: usize,
    pub(crate) count: usize,
    /// The offload header (all zeroes: none) and the super-packet's head,
    /// of `head_len` octets (none for a run of one).
    vnet: [u8; VNET_HDR_LEN],
    head: [u8; MAX_HEAD],
    head_len: usize,
}

impl Run {
    /// The offload header to send the run with.
    pub(crate) fn vnet(&self) -> &[u8] {
        &self.vnet
    }

    /// The pieces of the message: the common head, then each frame's UDP
    /// payload (for a run of one: the frame as it is).
    pub(crate) fn pieces<'a>(&'a self, frames: &[&'a [u8]]) -> impl Iterator<Item = &'a [u8]> {
        let head = (self.head_len > 0).then_some(&self.head[..self.head_len]);
        let skip = self.head_len;
        head.into_iter().chain(frames[self.first..self.first + self.count].iter().map(move |f| &f[skip..]))
    }
}

/// The layout of an ESP-in-UDP frame (any UDP datagram, in fact): no
/// IPv4 options, no IPv6 extension headers, not a fragment, lengths that
/// agree with the frame's.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Datagram {
    ipv6: bool,
    /// Octets of Ethernet, IP and UDP headers.
    head: usize,
    payload: usize,
}

impl Datagram {
    fn parse(frame: &[u8]) -> Option<Self> {
        let ip = frame.get(ETH_LEN..)?;
        let (ipv6, ip_len, total) = match ([frame[12], frame[13]], ip.first()?) {
            ([0x08, 0x00], 0x45) if ip.get(9) == Some(&PROTO_UDP) && ip.get(6)? & 0x3f == 0 && ip[7] == 0 => {
                (false, 20, usize::from(u16::from_be_bytes([ip[2], ip[3]])))
            }
            ([0x86, 0xdd], v) if v >> 4 == 6 && ip.get(6) == Some(&PROTO_UDP) => {
                (true, 40, 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]])))
            }
            _ => return None,
        };
        let udp = ip.get(ip_len..)?;
        let udp_len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
        if total != ip.len() || udp_len != udp.len() || udp_len <= UDP_LEN {
            return None;
        }
        Some(Self { ipv6, head: ETH_LEN + ip_len + UDP_LEN, payload: udp_len - UDP_LEN })
    }
}

/// Whether datagram `b` goes where `a` goes, the same way: same Ethernet
/// header, IP header but for lengths, IDs and checksums, and UDP ports.
fn alike(a: &[u8], b: &[u8], d: Datagram) -> bool {
    let (x, y) = (&a[ETH_LEN..], &b[ETH_LEN..]);
    let ip = if d.ipv6 {
        // Version, traffic class, flow label; next header, hop limit,
        // addresses.
        x[..4] == y[..4] && x[6..40] == y[6..40]
    } else {
        // Version, IHL, ToS; flags; TTL, protocol; addresses.
        x[..2] == y[..2] && x[6] == y[6] && x[8..10] == y[8..10] && x[12..20] == y[12..20]
    };
    let udp = d.head - UDP_LEN;
    a[..ETH_LEN] == b[..ETH_LEN] && ip && a[udp..udp + 4] == b[udp..udp + 4]
}

/// Splits `frames` into runs, in order: with `join`, each run of two or
/// more datagrams alike, all of one payload size but a shorter last, at
/// most [`MAX_SEGMENTS`] and [`MAX_PAYLOAD`] octets of payload, becomes
/// one super-packet; anything else goes alone.
pub(crate) fn runs(frames: &[&[u8]], join: bool) -> Vec<Run> {
    let mut out = Vec::with_capacity(if join { 1 } else { frames.len() });
    let mut i = 0;
    while i < frames.len() {
        let first = i;
        i += 1;
        let Some(d) = Datagram::parse(frames[first]).filter(|_| join) else {
            out.push(single(first));
            continue;
        };
        let mut total = d.payload;
        let mut last = d.payload;
        while i < frames.len() && i - first < MAX_SEGMENTS && last == d.payload {
            let f = frames[i];
            match Datagram::parse(f) {
                Some(e)
                    if e.ipv6 == d.ipv6
                        && e.payload <= d.payload
                        && total + e.payload <= MAX_PAYLOAD
                        && alike(frames[first], f, d) =>
                {
                    total += e.payload;
                    last = e.payload;
                    i += 1;
                }
                _ => break,
            }
        }
        out.push(if i - first == 1 {
            single(first)
        } else {
            whole(frames[first], first, i - first, d, total)
        });
    }
    out
}

/// A frame that goes as it is.
fn single(first: usize) -> Run {
    Run { first, count: 1, vnet: [0; VNET_HDR_LEN], head: [0; MAX_HEAD], head_len: 0 }
}

/// The run of `count` datagrams from `first` (the frame `frame`, laid out
/// as `d`), `payload` octets of UDP payload in all: the head with the
/// lengths of the whole, the IPv4 header's checksum, and the UDP checksum
/// left partial (its pseudo-header sum); the offload header.
fn whole(frame: &[u8], first: usize, count: usize, d: Datagram, payload: usize) -> Run {
    let mut head = [0u8; MAX_HEAD];
    head[..d.head].copy_from_slice(&frame[..d.head]);
    let ip_len = d.head - ETH_LEN - UDP_LEN;
    let udp_len = UDP_LEN + payload;
    // At most MAX_PAYLOAD + 20 + 8 octets: fits.
    let word = |v: usize| u16::try_from(v).unwrap_or(u16::MAX);
    let ip = &mut head[ETH_LEN..d.head];
    let pseudo = if d.ipv6 {
        ip[4..6].copy_from_slice(&word(udp_len).to_be_bytes());
        checksum_add(0, &ip[8..40])
    } else {
        ip[2..4].copy_from_slice(&word(ip_len + udp_len).to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let h = checksum_finish(checksum_add(0, &ip[..20]));
        ip[10..12].copy_from_slice(&h.to_be_bytes());
        checksum_add(0, &ip[12..20])
    };
    let udp = &mut ip[ip_len..];
    udp[4..6].copy_from_slice(&word(udp_len).to_be_bytes());
    let partial = checksum_fold(pseudo + u32::from(PROTO_UDP) + u32::from(word(udp_len)));
    udp[6..8].copy_from_slice(&partial.to_be_bytes());
    let mut vnet = [0u8; VNET_HDR_LEN];
    vnet[0] = F_NEEDS_CSUM;
    vnet[1] = GSO_UDP_L4;
    vnet[2..4].copy_from_slice(&word(d.head).to_ne_bytes());
    vnet[4..6].copy_from_slice(&word(d.payload).to_ne_bytes());
    vnet[6..8].copy_from_slice(&word(ETH_LEN + ip_len).to_ne_bytes());
    vnet[8..10].copy_from_slice(&6u16.to_ne_bytes());
    Run { first, count, vnet, head, head_len: d.head }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::frames::{Rx, VnetHdr, finish_checksum};

    /// An ESP-in-UDP frame over IPv4 (or IPv6) from port 4500 to `dport`
    /// with `payload` octets, each the datagram's number `n`; checksum 0.
    fn datagram(ipv6: bool, dport: u16, payload: usize, n: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        let udp_len = UDP_LEN + payload;
        if ipv6 {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(udp_len as u16).to_be_bytes());
            f.extend_from_slice(&[PROTO_UDP, 64]);
            f.extend_from_slice(&[0xfd; 16]);
            f.extend_from_slice(&[0xfe; 16]);
        } else {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            f.extend_from_slice(&[0, n, 0x40, 0, 64, PROTO_UDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        }
        f.extend_from_slice(&4500u16.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&(udp_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend(std::iter::repeat_n(n, payload));
        f
    }

    /// The message of `run` as the kernel gets it, after the offload
    /// header.
    fn message(run: &Run, frames: &[&[u8]]) -> Vec<u8> {
        run.pieces(frames).flatten().copied().collect()
    }

    /// The datagrams the kernel would cut `run`'s message into, each with
    /// its checksum finished.
    fn cut(run: &Run, frames: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut hdr = [0u8; VNET_HDR_LEN];
        hdr.copy_from_slice(run.vnet());
        let msg = message(run, frames);
        let Rx::Segment(s) = VnetHdr::parse(&hdr).classify(&msg) else { panic!("not a super-packet") };
        (0..s.count())
            .map(|i| {
                let mut out = vec![0u8; s.max_frame()];
                let n = s.write(&msg, i, &mut out);
                out.truncate(n);
                finish_checksum(&mut out[ETH_LEN..], s.partial());
                out
            })
            .collect()
    }

    /// Whether the UDP checksum of `frame` holds.
    fn checksum_ok(frame: &[u8], ipv6: bool) -> bool {
        let ip = &frame[ETH_LEN..];
        let (addrs, udp) = if ipv6 { (&ip[8..40], &ip[40..]) } else { (&ip[12..20], &ip[20..]) };
        let pseudo = checksum_add(0, addrs) + u32::from(PROTO_UDP) + udp.len() as u32;
        checksum_fold(checksum_add(pseudo, udp)) == 0xffff
    }

    #[test]
    fn joins_datagrams_to_one_peer_and_the_kernel_cuts_them_back() {
        for ipv6 in [false, true] {
            let sizes = [1400, 1400, 1400, 900];
            let owned: Vec<Vec<u8>> =
                sizes.iter().enumerate().map(|(n, &p)| datagram(ipv6, 4500, p, n as u8)).collect();
            let frames: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            let runs = runs(&frames, true);
            assert_eq!(runs.len(), 1);
            assert_eq!((runs[0].first, runs[0].count), (0, 4));
            let segs = cut(&runs[0], &frames);
            assert_eq!(segs.len(), 4);
            for (n, (seg, orig)) in segs.iter().zip(&owned).enumerate() {
                // Same datagram, now with a UDP checksum (and, over IPv4,
                // the ID the kernel gives each segment).
                assert_eq!(seg.len(), orig.len(), "datagram {n}");
                assert!(checksum_ok(seg, ipv6), "datagram {n}");
                let udp = if ipv6 { ETH_LEN + 40 } else { ETH_LEN + 20 };
                assert_eq!(seg[udp + 8..], orig[udp + 8..], "payload {n}");
                assert_eq!(seg[udp..udp + 6], orig[udp..udp + 6], "ports and length {n}");
            }
        }
    }

    #[test]
    fn keeps_apart_what_differs() {
        let a = datagram(false, 4500, 1400, 0);
        let other_port = datagram(false, 4501, 1400, 1);
        let short = datagram(false, 4500, 600, 2);
        let longer = datagram(false, 4500, 1401, 3);
        let mut not_udp = a.clone();
        not_udp[ETH_LEN + 9] = 50;
        let mut fragment = a.clone();
        fragment[ETH_LEN + 6] |= 0x20;
        let mut other_mac = a.clone();
        other_mac[5] = 9;
        let v6 = datagram(true, 4500, 1400, 4);
        let frames: Vec<&[u8]> =
            vec![&a, &other_port, &a, &a, &short, &a, &longer, &not_udp, &a, &fragment, &other_mac, &v6, &a];
        let got: Vec<(usize, usize)> = runs(&frames, true).iter().map(|r| (r.first, r.count)).collect();
        // a | port | a a short (a shorter one ends it) | a | longer | not
        // UDP | a | fragment | other MAC | v6 | a
        assert_eq!(
            got,
            [(0, 1), (1, 1), (2, 3), (5, 1), (6, 1), (7, 1), (8, 1), (9, 1), (10, 1), (11, 1), (12, 1)]
        );
        // Alone, a frame goes as it came, with no offload header.
        let runs = runs(&frames, true);
        assert_eq!(message(&runs[0], &frames), a);
        assert_eq!(runs[0].vnet(), &[0; VNET_HDR_LEN]);
        // And so does every frame for a port without offload headers.
        let same = vec![&a[..]; 5];
        assert!(super::runs(&same, false).iter().all(|r| r.count == 1 && message(r, &same) == a));
    }

    #[test]
    fn stops_at_the_kernels_limits() {
        let a = datagram(false, 4500, 1000, 0);
        let many: Vec<&[u8]> = vec![&a; MAX_SEGMENTS + 3];
        let got: Vec<usize> = runs(&many, true).iter().map(|r| r.count).collect();
        assert_eq!(got, [MAX_SEGMENTS, 3]);
        let big = datagram(false, 4500, 9000, 0);
        let jumbo: Vec<&[u8]> = vec![&big; 10];
        let got: Vec<usize> = runs(&jumbo, true).iter().map(|r| r.count).collect();
        assert_eq!(got, [7, 3], "at most 65507 octets of payload");
        for r in runs(&jumbo, true) {
            let len = message(&r, &jumbo).len() - ETH_LEN;
            assert!(len <= 65_535);
        }
    }

    #[test]
    fn ignores_frames_whose_lengths_disagree() {
        let mut a = datagram(false, 4500, 1000, 0);
        let b = a.clone();
        a.push(0);
        let frames: Vec<&[u8]> = vec![&a, &b, &b];
        let got: Vec<(usize, usize)> = runs(&frames, true).iter().map(|r| (r.first, r.count)).collect();
        assert_eq!(got, [(0, 1), (1, 2)]);
        let tiny: Vec<&[u8]> = vec![&b[..20], &b[..5], &[]];
        assert_eq!(runs(&tiny, true).len(), 3);
    }
}
