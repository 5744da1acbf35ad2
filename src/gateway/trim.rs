//! Socket filters that keep only the head of the super-packets a node
//! has no use for whole: ESP on the external port, plaintext to the
//! hosts of other nodes' segments on the internal port ([`hosts_program`]).
//!
//! Every node receives every frame sent to the cluster MAC, and the kernel
//! copies each into every node's receive ring, in the time of whoever sent
//! it. A node needs whole only the ESP of the segments it owns and the
//! samples it verifies; of the rest, that it was there. The classic BPF
//! program built here, attached to the external port, trims the UDP GSO
//! super-packets (frames longer than the port's MTU) of ESP in UDP to the
//! VIP whose SPI carries a segment this node does not own to their
//! headers ([`HEAD`] octets), except one in `sample_every` at random, which
//! passes whole as a sample. Everything else passes whole: frames that
//! fit the MTU (so the countdown and time floor of sampling still see
//! them), IKE, other addresses.
//!
//! The program holds the owned segments as constants, so the node attaches
//! a new one whenever they change (the kernel swaps filters atomically).
//! A super-packet trimmed just before a segment was taken is lost to the
//! new owner, as it would have been to the old one.

use core::net::IpAddr;
use socket2::SockFilter;
use tandem_cluster::SegmentSet;

/// Octets of a trimmed frame kept: its Ethernet, IP (with options) and
/// UDP headers and the ESP header after them.
pub(crate) const HEAD: u32 = 128;
/// Octets of a trimmed plaintext frame kept: its Ethernet header, an IP
/// header with options (IPv4) or a fixed one (IPv6), and a TCP header
/// with options, all the node needs to count the packet for its SA.
pub(crate) const HOST_HEAD: u32 = 14 + 60 + 60;
/// The UDP port of ESP in UDP (RFC 3948).
const NAT_T_PORT: u32 = 4500;

/// What the filter is built from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TrimPlan {
    /// The cluster MAC of the port.
    pub(crate) mac: [u8; 6],
    /// The port's VIP.
    pub(crate) vip: IpAddr,
    /// The longest frame that is not a super-packet (MTU, Ethernet header
    /// and a VLAN tag).
    pub(crate) longest: u32,
    /// One super-packet in this many passes whole as a sample (at least 2;
    /// 1 wants every frame whole, so no filter).
    pub(crate) sample_every: u32,
}

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_W_IND: u16 = 0x40;
const LD_H_IND: u16 = 0x48;
const LD_W_LEN: u16 = 0x80;
const LD_IMM: u16 = 0x00;
const LDX_B_MSH: u16 = 0xb1;
const ALU_SUB_K: u16 = 0x14;
const ALU_LSH_X: u16 = 0x6c;
const ALU_RSH_K: u16 = 0x74;
const ALU_MOD_K: u16 = 0x94;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const JA: u16 = 0x05;
/// The longest program the kernel takes (`BPF_MAXINSNS`), less room for
/// the fixed part of [`hosts_program`].
const MAX_HOST_INSNS: usize = 4096 - 32;
/// Addresses compared in one run of jumps of [`hosts_program`], so that
/// every conditional jump stays within its 255 instructions.
const V4_RUN: usize = 200;
const V6_RUN: usize = 25;
const TAX: u16 = 0x07;
/// The kernel's random number (`SKF_AD_OFF + SKF_AD_RANDOM`).
const RANDOM: u32 = (-0x1000i32 + 56) as u32;

/// Where a jump goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum To {
    Next,
    Accept,
    High,
    Sample,
}

/// An instruction with symbolic jumps, and the label it bears.
struct Ins {
    code: u16,
    k: u32,
    t: To,
    f: To,
    label: Option<To>,
}

fn op(code: u16, k: u32) -> Ins {
    Ins { code, k, t: To::Next, f: To::Next, label: None }
}

fn jump(code: u16, k: u32, t: To, f: To) -> Ins {
    Ins { code, k, t, f, label: None }
}

fn labelled(label: To, i: Ins) -> Ins {
    Ins { label: Some(label), ..i }
}

/// One instruction of a classic BPF program (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bpf {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `program` as the kernel takes it.
pub(crate) fn sock_filters(program: &[Bpf]) -> Vec<SockFilter> {
    program.iter().map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k)).collect()
}

/// The program for `plan` with `owned` the segments this node owns.
pub(crate) fn program(plan: &TrimPlan, owned: SegmentSet) -> Vec<Bpf> {
    let m = plan.mac;
    let mut p = vec![
        op(LD_W_LEN, 0),
        jump(JGT_K, plan.longest, To::Next, To::Accept),
        op(LD_W_ABS, 0),
        jump(JEQ_K, u32::from_be_bytes([m[0], m[1], m[2], m[3]]), To::Next, To::Accept),
        op(LD_H_ABS, 4),
        jump(JEQ_K, u32::from(u16::from_be_bytes([m[4], m[5]])), To::Next, To::Accept),
        op(LD_H_ABS, 12),
    ];
    // Leaves the first word of the UDP payload (the SPI, or the non-ESP
    // marker of IKE) in A.
    match plan.vip {
        IpAddr::V4(vip) => p.extend([
            jump(JEQ_K, 0x0800, To::Next, To::Accept),
            op(LD_B_ABS, 14 + 9),
            jump(JEQ_K, 17, To::Next, To::Accept),
            op(LD_H_ABS, 14 + 6),
            jump(JSET_K, 0x3fff, To::Accept, To::Next),
            op(LD_W_ABS, 14 + 16),
            jump(JEQ_K, u32::from(vip), To::Next, To::Accept),
            op(LDX_B_MSH, 14),
            op(LD_H_IND, 14 + 2),
            jump(JEQ_K, NAT_T_PORT, To::Next, To::Accept),
            op(LD_W_IND, 14 + 8),
        ]),
        IpAddr::V6(vip) => {
            p.extend([
                jump(JEQ_K, 0x86dd, To::Next, To::Accept),
                op(LD_B_ABS, 14 + 6),
                jump(JEQ_K, 17, To::Next, To::Accept),
            ]);
            let o = vip.octets();
            for (i, w) in o.chunks_exact(4).enumerate() {
                p.push(op(LD_W_ABS, 14 + 24 + 4 * i as u32));
                p.push(jump(JEQ_K, u32::from_be_bytes([w[0], w[1], w[2], w[3]]), To::Next, To::Accept));
            }
            p.extend([
                op(LD_H_ABS, 14 + 40 + 2),
                jump(JEQ_K, NAT_T_PORT, To::Next, To::Accept),
                op(LD_W_ABS, 14 + 40 + 8),
            ]);
        }
    }
    // The segment (less one) is the SPI's top six bits (`tandem_cluster::
    // spi`); owned segments pass whole, as does a random one in n.
    let bits = owned.bits();
    p.extend([
        jump(JEQ_K, 0, To::Accept, To::Next),
        op(ALU_RSH_K, 26),
        jump(JGE_K, 32, To::High, To::Next),
        op(TAX, 0),
        op(LD_IMM, 1),
        op(ALU_LSH_X, 0),
        jump(JSET_K, bits as u32, To::Accept, To::Sample),
        labelled(To::High, op(ALU_SUB_K, 32)),
        op(TAX, 0),
        op(LD_IMM, 1),
        op(ALU_LSH_X, 0),
        jump(JSET_K, (bits >> 32) as u32, To::Accept, To::Sample),
        labelled(To::Sample, op(LD_W_ABS, RANDOM)),
        op(ALU_MOD_K, plan.sample_every.max(1)),
        jump(JEQ_K, 0, To::Accept, To::Next),
        op(RET_K, HEAD),
        labelled(To::Accept, op(RET_K, u32::MAX)),
    ]);
    let at = |label: To| p.iter().position(|i| i.label == Some(label)).unwrap_or(p.len() - 1);
    let targets = [at(To::Accept), at(To::High), at(To::Sample)];
    let offset = |from: usize, to: To| -> u8 {
        let dest = match to {
            To::Next => from + 1,
            To::Accept => targets[0],
            To::High => targets[1],
            To::Sample => targets[2],
        };
        // The program is far shorter than 256 instructions.
        u8::try_from(dest - from - 1).unwrap_or(0)
    };
    p.iter()
        .enumerate()
        .map(|(n, i)| Bpf { code: i.code, jt: offset(n, i.t), jf: offset(n, i.f), k: i.k })
        .collect()
}

/// The program for the internal port with cluster MAC `mac`: frames
/// longer than `longest` (super-packets) to `mac` whose IPv4 or IPv6
/// destination is one of `hosts` keep [`HOST_HEAD`] octets; every other
/// frame passes whole. Hosts beyond what a program holds pass whole too.
pub(crate) fn hosts_program(mac: [u8; 6], longest: u32, hosts: &[IpAddr]) -> Vec<Bpf> {
    let raw = |code, jt, jf, k| Bpf { code, jt, jf, k };
    // Each check passes the frame whole when it fails.
    let mut p = vec![
        raw(LD_W_LEN, 0, 0, 0),
        raw(JGT_K, 1, 0, longest),
        raw(RET_K, 0, 0, u32::MAX),
        raw(LD_W_ABS, 0, 0, 0),
        raw(JEQ_K, 1, 0, u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]])),
        raw(RET_K, 0, 0, u32::MAX),
        raw(LD_H_ABS, 0, 0, 4),
        raw(JEQ_K, 1, 0, u32::from(u16::from_be_bytes([mac[4], mac[5]]))),
        raw(RET_K, 0, 0, u32::MAX),
        raw(LD_H_ABS, 0, 0, 12),
        raw(JEQ_K, 0, 1, 0x0800),
        raw(JA, 0, 0, 0),
        raw(JEQ_K, 0, 1, 0x86dd),
        raw(JA, 0, 0, 0),
        raw(RET_K, 0, 0, u32::MAX),
    ];
    let (to_v4, to_v6) = (11, 13);
    let mut room = MAX_HOST_INSNS;
    let v4: Vec<u32> = hosts
        .iter()
        .filter_map(|h| match h {
            IpAddr::V4(a) => Some(u32::from(*a)),
            IpAddr::V6(_) => None,
        })
        .take(room / 2)
        .collect();
    room -= v4.len() + v4.len().div_ceil(V4_RUN) * 2;
    let v6: Vec<[u32; 4]> = hosts
        .iter()
        .filter_map(|h| match h {
            IpAddr::V6(a) => {
                let o = a.octets();
                let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
                Some([w(0), w(4), w(8), w(12)])
            }
            IpAddr::V4(_) => None,
        })
        .take(room / 9)
        .collect();
    // A run of n: n compares (a match jumps to the run's trim), a jump
    // over that trim to the next run, the trim.
    p[to_v4].k = (p.len() - to_v4 - 1) as u32;
    p.push(raw(LD_W_ABS, 0, 0, 14 + 16));
    for run in v4.chunks(V4_RUN) {
        let n = run.len();
        for (j, &a) in run.iter().enumerate() {
            p.push(raw(JEQ_K, (n - j) as u8, 0, a));
        }
        p.push(raw(JA, 0, 0, 1));
        p.push(raw(RET_K, 0, 0, HOST_HEAD));
    }
    p.push(raw(RET_K, 0, 0, u32::MAX));
    // A host of a run of n: four loads and compares (a mismatch skips to
    // the next host, the last match jumps to the run's trim).
    p[to_v6].k = (p.len() - to_v6 - 1) as u32;
    for run in v6.chunks(V6_RUN) {
        let n = run.len();
        for (b, words) in run.iter().enumerate() {
            for (i, &w) in words.iter().enumerate() {
                p.push(raw(LD_W_ABS, 0, 0, 14 + 24 + 4 * i as u32));
                let last = i == 3;
                let jt = if last { 8 * (n - b) - 7 } else { 0 };
                let jf = if last { 0 } else { 6 - 2 * i };
                p.push(raw(JEQ_K, jt as u8, jf as u8, w));
            }
        }
        p.push(raw(JA, 0, 0, 1));
        p.push(raw(RET_K, 0, 0, HOST_HEAD));
    }
    p.push(raw(RET_K, 0, 0, u32::MAX));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_cluster::{Segment, SegmentCount};

    /// Runs a classic BPF program (the instructions `program` uses) over
    /// `frame` as the kernel would, with `random` for the random number.
    fn run(prog: &[Bpf], frame: &[u8], random: u32) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let load = |at: u32, n: usize| -> Option<u32> {
            if at == RANDOM {
                return Some(random);
            }
            let b = frame.get(at as usize..at as usize + n)?;
            Some(b.iter().fold(0u32, |v, &o| v << 8 | u32::from(o)))
        };
        for _ in 0..prog.len() {
            assert!(pc < prog.len(), "the program ran off its end");
            let i = prog[pc];
            let (k, jt, jf) = (i.k, usize::from(i.jt), usize::from(i.jf));
            pc += 1;
            let jump = |c: bool| if c { jt } else { jf };
            match i.code {
                LD_W_ABS | LD_H_ABS | LD_B_ABS | LD_W_IND | LD_H_IND => {
                    let n = match i.code {
                        LD_W_ABS | LD_W_IND => 4,
                        LD_H_ABS | LD_H_IND => 2,
                        _ => 1,
                    };
                    let at = if i.code & 0x40 != 0 { k.wrapping_add(x) } else { k };
                    match load(at, n) {
                        Some(v) => a = v,
                        None => return 0,
                    }
                }
                LD_W_LEN => a = frame.len() as u32,
                LD_IMM => a = k,
                LDX_B_MSH => match frame.get(k as usize) {
                    Some(b) => x = u32::from(b & 0x0f) * 4,
                    None => return 0,
                },
                ALU_SUB_K => a = a.wrapping_sub(k),
                ALU_LSH_X => a = a.checked_shl(x).unwrap_or(0),
                ALU_RSH_K => a >>= k,
                ALU_MOD_K => a %= k,
                TAX => x = a,
                JA => pc += k as usize,
                JEQ_K => pc += jump(a == k),
                JGT_K => pc += jump(a > k),
                JGE_K => pc += jump(a >= k),
                JSET_K => pc += jump(a & k != 0),
                RET_K => return k,
                other => panic!("opcode {other:#x} not in the test's interpreter"),
            }
        }
        panic!("the program ran off its end")
    }

    const MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x0a, 0x00, 0x01];

    fn plan(vip: &str) -> TrimPlan {
        TrimPlan { mac: MAC, vip: vip.parse().expect("an address"), longest: 1518, sample_every: 16 }
    }

    /// A frame of `len` octets to `mac` carrying ESP in UDP to `vip`
    /// port `port` with `spi`, behind `options` octets of IPv4 options.
    fn frame(vip: IpAddr, port: u16, spi: u32, len: usize, options: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&MAC);
        let udp = match vip {
            IpAddr::V4(a) => {
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                f[14] = 0x45 + (options / 4) as u8;
                f[14 + 9] = 17;
                f[14 + 16..14 + 20].copy_from_slice(&a.octets());
                14 + 20 + options
            }
            IpAddr::V6(a) => {
                f[12..14].copy_from_slice(&[0x86, 0xdd]);
                f[14] = 0x60;
                f[14 + 6] = 17;
                f[14 + 24..14 + 40].copy_from_slice(&a.octets());
                14 + 40
            }
        };
        f[udp + 2..udp + 4].copy_from_slice(&port.to_be_bytes());
        f[udp + 8..udp + 12].copy_from_slice(&spi.to_be_bytes());
        f
    }

    fn spi_of(segment: u32) -> u32 {
        (segment - 1) << 26 | 0x1234
    }

    fn owned(segments: &[u32]) -> SegmentSet {
        let count = SegmentCount::new(64).expect("a count");
        let mut s = SegmentSet::EMPTY;
        for &n in segments {
            let seg: Segment = count.segment(n).expect("a segment");
            s.insert(seg);
        }
        s
    }

    #[test]
    fn trims_the_super_packets_of_segments_not_owned() {
        for vip in ["192.0.2.10", "2001:db8::10"] {
            let p = plan(vip);
            let v: IpAddr = vip.parse().expect("an address");
            let prog = program(&p, owned(&[1, 3, 40]));
            for (segment, whole) in [(1, true), (2, false), (3, true), (33, false), (40, true), (64, false)] {
                let f = frame(v, 4500, spi_of(segment), 30_000, 0);
                let want = if whole { u32::MAX } else { HEAD };
                assert_eq!(run(&prog, &f, 5), want, "{vip} segment {segment}");
                // One in sample_every passes whole.
                assert_eq!(run(&prog, &f, 32), u32::MAX, "{vip} segment {segment}, a sample");
            }
        }
    }

    #[test]
    fn passes_everything_else_whole() {
        let p = plan("192.0.2.10");
        let v: IpAddr = "192.0.2.10".parse().expect("an address");
        let prog = program(&p, SegmentSet::EMPTY);
        let spi = spi_of(2);
        assert_eq!(run(&prog, &frame(v, 4500, spi, 30_000, 0), 1), HEAD);
        // With IPv4 options the UDP header moves, and the filter follows.
        assert_eq!(run(&prog, &frame(v, 4500, spi, 30_000, 12), 1), HEAD);
        // A frame that fits the MTU, IKE (the non-ESP marker), another
        // port, another address, another MAC, a fragment.
        assert_eq!(run(&prog, &frame(v, 4500, spi, 1518, 0), 1), u32::MAX);
        assert_eq!(run(&prog, &frame(v, 4500, 0, 30_000, 0), 1), u32::MAX);
        assert_eq!(run(&prog, &frame(v, 500, spi, 30_000, 0), 1), u32::MAX);
        let other: IpAddr = "192.0.2.11".parse().expect("an address");
        assert_eq!(run(&prog, &frame(other, 4500, spi, 30_000, 0), 1), u32::MAX);
        let mut f = frame(v, 4500, spi, 30_000, 0);
        f[5] = 2;
        assert_eq!(run(&prog, &f, 1), u32::MAX);
        let mut f = frame(v, 4500, spi, 30_000, 0);
        f[14 + 6] = 0x20;
        assert_eq!(run(&prog, &f, 1), u32::MAX);
        // An IPv6 frame at an IPv4 VIP.
        let v6: IpAddr = "2001:db8::10".parse().expect("an address");
        assert_eq!(run(&prog, &frame(v6, 4500, spi, 30_000, 0), 1), u32::MAX);
    }
    /// A frame of `len` octets to `mac` carrying TCP to `dst`.
    fn plaintext(mac: [u8; 6], dst: IpAddr, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&mac);
        match dst {
            IpAddr::V4(a) => {
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                f[14] = 0x45;
                f[14 + 9] = 6;
                f[14 + 16..14 + 20].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                f[12..14].copy_from_slice(&[0x86, 0xdd]);
                f[14] = 0x60;
                f[14 + 6] = 6;
                f[14 + 24..14 + 40].copy_from_slice(&a.octets());
            }
        }
        f
    }

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4((0x0a00_0000 + n).into())
    }

    fn v6(n: u32) -> IpAddr {
        IpAddr::V6((0x2001_0db8_u128 << 96 | u128::from(n) << 40 | 7).into())
    }

    #[test]
    fn trims_the_super_packets_to_foreign_hosts() {
        let hosts = [v4(1), v4(5), v6(2), v4(9), v6(3)];
        let prog = hosts_program(MAC, 1518, &hosts);
        for (host, foreign) in [(v4(1), true), (v4(5), true), (v4(9), true), (v6(2), true), (v6(3), true)]
            .into_iter()
            .chain([(v4(2), false), (v4(0x0100_0005), false), (v6(1), false), (v6(4), false)])
        {
            let want = if foreign { HOST_HEAD } else { u32::MAX };
            assert_eq!(run(&prog, &plaintext(MAC, host, 30_000), 0), want, "{host}");
            // A frame that fits the MTU, or to another MAC, passes whole.
            assert_eq!(run(&prog, &plaintext(MAC, host, 1518), 0), u32::MAX, "{host}");
            let mut other = MAC;
            other[5] = 2;
            assert_eq!(run(&prog, &plaintext(other, host, 30_000), 0), u32::MAX, "{host}");
        }
        // An IPv6 host differing in one word only passes whole.
        for word in 0..4 {
            let IpAddr::V6(a) = v6(2) else { unreachable!() };
            let mut o = a.octets();
            o[4 * word + 3] ^= 0x80;
            let near = IpAddr::V6(o.into());
            assert_eq!(run(&prog, &plaintext(MAC, near, 30_000), 0), u32::MAX, "{near}");
        }
        // Neither IPv4 nor IPv6, and no hosts at all.
        let mut arp = plaintext(MAC, v4(1), 30_000);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run(&prog, &arp, 0), u32::MAX);
        let empty = hosts_program(MAC, 1518, &[]);
        assert_eq!(run(&empty, &plaintext(MAC, v4(1), 30_000), 0), u32::MAX);
        assert_eq!(run(&empty, &plaintext(MAC, v6(2), 30_000), 0), u32::MAX);
    }

    #[test]
    fn holds_as_many_hosts_as_the_kernel_allows() {
        let hosts: Vec<IpAddr> = (0..3000).map(v4).chain((0..600).map(v6)).collect();
        let prog = hosts_program(MAC, 1518, &hosts);
        assert!(prog.len() <= 4096, "{} instructions", prog.len());
        let trimmed = |h: &IpAddr| run(&prog, &plaintext(MAC, *h, 30_000), 0) == HOST_HEAD;
        let (in_v4, in_v6) = (
            hosts[..3000].iter().filter(|h| trimmed(h)).count(),
            hosts[3000..].iter().filter(|h| trimmed(h)).count(),
        );
        // Each family gets room, the first hosts of each are in, and
        // every host is either trimmed or passed whole (never cut wrong).
        assert!(in_v4 >= 1500 && in_v6 >= 200, "{in_v4} / {in_v6}");
        assert!(trimmed(&hosts[0]) && trimmed(&hosts[3000]));
        assert!((0..in_v4).all(|i| trimmed(&hosts[i])));
        assert!((3000..3000 + in_v6).all(|i| trimmed(&hosts[i])));
        assert!(!trimmed(&v4(5000)) && !trimmed(&v6(5000)));
    }
}
