//! A raw Ethernet port on AF_PACKET: every frame of one interface in, whole
//! frames out, and the interface told to accept the cluster MAC
//! (`PACKET_ADD_MEMBERSHIP`; no promiscuous mode).
//!
//! Frames move in batches. Received frames land in a `TPACKET_V3` ring
//! shared with the kernel: the kernel copies each frame into the current
//! block of the ring as it arrives (in the context of whoever sent it)
//! and hands the block over when it is full or [`RING_TIMEOUT_MS`] after
//! its first frame, so a busy port costs one wakeup per block and no
//! system call per frame; frames are decrypted or encrypted where they lie
//! in the block, and the block goes back to the kernel once its frames are
//! sent. (The price: a frame on an otherwise idle port waits up to that
//! timeout.) Where the ring cannot be set up, one `recvmmsg` reads up to
//! a batch of frames into slots instead. One `sendmmsg` writes a batch
//! (both through `nix`).
//!
//! With `PACKET_VNET_HDR` (when the kernel has it) every frame comes with
//! a `virtio_net_hdr` saying what the sender left to the hardware: a
//! checksum to finish, or a TCP/UDP super-packet to cut (see `frames`); so
//! the peers on a veth or bridge may keep their offloads on. Frames sent
//! carry a header too: empty (nothing left to finish), or asking the
//! kernel to cut a TCP super-packet the node merged.
//!
//! A port can also be a TAP device instead (`PacketPort::open_tap`), for
//! a node whose host bridges it (a VM's or a container's way): a frame
//! per `read` and `write`, no ring, no offload headers.
//!
//! Binding a packet socket to an interface, joining a link-layer group,
//! mapping the ring and attaching to a TAP device have no safe wrapper in
//! `socket2` or `nix`, so this module makes those system calls itself
//! and reads the ring's shared memory (the only `unsafe` of the package);
//! everything else goes through `socket2` and `nix`.
#![allow(unsafe_code)]

use super::GatewayError;
use super::frames::{VNET_HDR_LEN, VnetHdr};
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use nix::sys::socket::{MsgFlags, MultiHeaders, recvmmsg, sendmmsg};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tracing::warn;

/// The receive and send buffers of a port.
const SOCKET_BUFFER: usize = 8 << 20;
/// Where a received frame starts in its slot: room in front for an ESP
/// encapsulation in place and the Ethernet header of the result
/// ([`tandem_esp::HEADROOM`] and 14 octets), and the IP packet (14 octets
/// further) on a 64-octet boundary.
pub(crate) const FRAME_AT: usize = 128 - 14;
/// Octets after the longest frame a slot keeps free: ESP's tailroom and
/// the padding of a short frame.
pub(crate) const TAIL: usize = 128;
/// The longest frame a port reads: a 64 KiB super-packet with its
/// Ethernet header and a VLAN tag.
pub(crate) const MAX_FRAME: usize = 65_536 + 18;
/// The `virtio_net_hdr` of a frame sent: nothing left to finish.
const NO_OFFLOAD: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];
/// The ring: blocks of this size (each holds at least one 64 KiB
/// super-packet; a full block wakes the node), as many as the
/// configuration says (`ring_mib`). Blocks of 128 KiB woke a standby
/// eight times as often, which cost it a third more CPU per packet. The
/// ring holds as many milliseconds of sparse traffic (a block per
/// [`RING_TIMEOUT_MS`]) as it has blocks: what the node may spend
/// elsewhere (on an IKE burst, say) before the kernel drops frames.
const RING_BLOCK: usize = 1 << 20;
/// A block with frames goes to user space this long after its first frame
/// at the latest (milliseconds; the kernel's minimum).
pub(crate) const RING_TIMEOUT_MS: u32 = 1;
/// Octets the kernel leaves free before every frame in the ring
/// (`PACKET_RESERVE`): room for an ESP encapsulation in place and its
/// Ethernet header, with the tail of the frame before (which may grow by
/// ESP's tailroom into this frame's descriptor) far apart.
const RING_RESERVE: usize = 192;
/// `TPACKET_V3`.
const TPACKET_V3: i32 = 2;
/// Frames read per `recvmmsg` where there is no ring.
const SLOTS: usize = 64;

/// One interface's frames.
pub(crate) struct PacketPort {
    /// A packet socket, or a TAP device's queue.
    io: AsyncFd<OwnedFd>,
    name: String,
    mac: [u8; 6],
    mtu: usize,
    /// `PACKET_VNET_HDR` is on: a header precedes every frame both ways.
    vnet: bool,
    rx: Rx,
    /// The frames of the batch at hand.
    frames: Vec<RxFrame>,
    /// Frames the kernel dropped for want of room in the ring.
    drops: u64,
}

/// Where received frames land.
enum Rx {
    Ring(Ring),
    Slots(Slots),
    /// A TAP device's frames, one `read` each, into slots.
    Tap(Slots),
}

/// A received frame of the batch at hand.
struct RxFrame {
    hdr: VnetHdr,
    /// Its buffer: the slot (the ring's block is one for all).
    slot: usize,
    /// Where it lies in that buffer; `None` if it was cut short.
    at: Option<Range<usize>>,
    /// A frame cut short in the ring (by the socket's filter): where its
    /// head lies, and its length as it came.
    head: Option<(Range<usize>, usize)>,
}

/// Slots for `recvmmsg` (or `read`), each frame at [`FRAME_AT`] in its
/// slot with [`TAIL`] octets free after the longest.
struct Slots {
    headers: MultiHeaders<()>,
    slots: Vec<Box<[u8]>>,
    vnet: Vec<[u8; VNET_HDR_LEN]>,
}

impl Slots {
    fn new() -> Self {
        Self {
            headers: MultiHeaders::preallocate(SLOTS, None),
            slots: (0..SLOTS).map(|_| vec![0u8; FRAME_AT + MAX_FRAME + TAIL].into_boxed_slice()).collect(),
            vnet: vec![NO_OFFLOAD; SLOTS],
        }
    }
}

/// A `TPACKET_V3` receive ring mapped from the kernel.
struct Ring {
    map: NonNull<u8>,
    /// The block user space holds (its frames are the batch at hand).
    held: Option<usize>,
    /// The block to look at next, of this many.
    next: usize,
    blocks: usize,
    /// The kernel dropped frames for want of a free block since the
    /// drops were last counted (`TP_STATUS_LOSING` on the block taken).
    losing: bool,
}

// SAFETY: the mapping belongs to this value alone (nothing else holds its
// address), so it may move to another thread with it.
unsafe impl Send for Ring {}

impl Ring {
    /// Maps the ring set up on `fd`.
    fn map(fd: i32, blocks: usize) -> io::Result<Self> {
        // SAFETY: a new shared mapping of the socket's ring, of the size the
        // ring was set up with; the kernel checks both.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                RING_BLOCK * blocks,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { map, held: None, next: 0, blocks, losing: false })
    }

    /// The status word of block `b`, shared with the kernel.
    fn status(&self, b: usize) -> &AtomicU32 {
        // SAFETY: block `b` < self.blocks lies in the mapping, which lives as
        // long as `self`; `block_status` is the aligned u32 at offset 8 of
        // its descriptor (struct tpacket_block_desc), which the kernel and
        // we only access atomically.
        unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(b * RING_BLOCK + 8).cast::<u32>()) }
    }

    /// Block `b`, which user space holds.
    fn block(&mut self, b: usize) -> &mut [u8] {
        debug_assert_eq!(self.held, Some(b));
        // SAFETY: block `b` < self.blocks lies in the mapping, which lives
        // as long as `self`. The kernel handed the block over (its status
        // read with acquire ordering showed TP_STATUS_USER) and writes to
        // it no more until we hand it back (`release`, with release
        // ordering); `&mut self` makes this the only reference meanwhile.
        unsafe { core::slice::from_raw_parts_mut(self.map.as_ptr().add(b * RING_BLOCK), RING_BLOCK) }
    }

    /// Hands the held block back to the kernel.
    fn release(&mut self) {
        if let Some(b) = self.held.take() {
            self.status(b).store(libc::TP_STATUS_KERNEL, Ordering::Release);
        }
    }

    /// Takes the next block if the kernel handed it over, and lists its
    /// frames into `out`.
    fn take(&mut self, vnet: bool, out: &mut Vec<RxFrame>) -> bool {
        let b = self.next;
        let status = self.status(b).load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return false;
        }
        self.losing = status & libc::TP_STATUS_LOSING != 0;
        self.held = Some(b);
        self.next = (b + 1) % self.blocks;
        let block = self.block(b);
        let word = |at: usize| -> usize {
            block.get(at..at + 4).map_or(0, |w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]) as usize)
        };
        let half = |at: usize| -> usize {
            block.get(at..at + 2).map_or(0, |w| usize::from(u16::from_ne_bytes([w[0], w[1]])))
        };
        // struct tpacket_hdr_v1: num_pkts at 12, offset_to_first_pkt at 16.
        let (count, mut at) = (word(12), word(16));
        for _ in 0..count {
            if at == 0 || at + 28 > RING_BLOCK {
                break;
            }
            // struct tpacket3_hdr: tp_next_offset 0, tp_snaplen 12, tp_len
            // 16, tp_mac 24.
            let (next, snap, len, mac) = (word(at), word(at + 12), word(at + 16), half(at + 24));
            let start = at + mac;
            let fits = snap <= len && start + snap <= RING_BLOCK && mac >= VNET_HDR_LEN;
            let frame = (fits && snap == len).then_some(start..start + snap);
            let head = (fits && snap < len).then_some((start..start + snap, len));
            let hdr = if fits && vnet {
                let mut h = [0u8; VNET_HDR_LEN];
                h.copy_from_slice(&block[start - VNET_HDR_LEN..start]);
                VnetHdr::parse(&h)
            } else {
                VnetHdr::default()
            };
            out.push(RxFrame { hdr, slot: 0, at: frame, head });
            if next == 0 {
                break;
            }
            at += next;
        }
        true
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, of that size, unused from here.
        unsafe { libc::munmap(self.map.as_ptr().cast(), RING_BLOCK * self.blocks) };
    }
}

/// Headers for batched sends.
pub(crate) struct TxBatch {
    headers: MultiHeaders<()>,
    none: Vec<Option<()>>,
}

impl TxBatch {
    /// Room for `n` frames per system call.
    pub(crate) fn new(n: usize) -> Self {
        let n = n.max(1);
        Self { headers: MultiHeaders::preallocate(n, None), none: vec![None; n] }
    }
}

/// Messages for [`PacketPort::send_batch`], each an offload header
/// (empty: nothing to finish) and a frame in one piece or more.
#[derive(Default)]
pub(crate) struct Messages<'a> {
    /// Each message's header and pieces, one message after the other.
    pieces: Vec<&'a [u8]>,
    /// Where each message's pieces end.
    ends: Vec<usize>,
}

impl<'a> Messages<'a> {
    /// Adds a message: `frame` with the offload header `hdr`.
    pub(crate) fn push(&mut self, hdr: &'a [u8], frame: &'a [u8]) {
        self.push_pieces(hdr, [frame]);
    }

    /// Adds a message: the frame made of `pieces`, with the offload
    /// header `hdr`.
    pub(crate) fn push_pieces(&mut self, hdr: &'a [u8], pieces: impl IntoIterator<Item = &'a [u8]>) {
        self.pieces.push(hdr);
        self.pieces.extend(pieces);
        self.ends.push(self.pieces.len());
    }

    /// How many messages there are.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Message `i`: its header, then its pieces.
    fn get(&self, i: usize) -> &[&'a [u8]] {
        let from = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.pieces[from..self.ends[i]]
    }
}

/// What a batched send did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sent {
    /// Messages the kernel took.
    pub(crate) messages: usize,
    /// Messages dropped: queue full, or refused.
    pub(crate) dropped: usize,
    /// System calls made.
    pub(crate) calls: usize,
}

impl PacketPort {
    /// Opens `interface` for every ethertype, with `cluster_mac` accepted
    /// and a receive ring of `ring_blocks` blocks of [`RING_BLOCK`] (none:
    /// `recvmmsg`).
    pub(crate) fn open(
        interface: &str,
        cluster_mac: [u8; 6],
        ring_blocks: usize,
    ) -> Result<Self, GatewayError> {
        let ctx = |what: &str, e| GatewayError::io(format!("{what} (interface {interface})"), e);
        let sys = |file: &str| {
            let path = format!("/sys/class/net/{interface}/{file}");
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| GatewayError::io(format!("reading {path}"), e))
        };
        if !std::path::Path::new(&format!("/sys/class/net/{interface}")).exists() {
            return Err(GatewayError::Config(format!("no network interface {interface}")));
        }
        let index: i32 = sys("ifindex")?
            .parse()
            .map_err(|_| GatewayError::Config(format!("{interface}: unreadable interface index")))?;
        let mac = parse_mac(&sys("address")?)
            .ok_or_else(|| GatewayError::Config(format!("{interface}: not an Ethernet interface")))?;
        let mtu: usize = sys("mtu")?.parse().unwrap_or(1500);
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let s = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(i32::from(proto))))
            .map_err(|e| ctx("opening a packet socket", e))?;
        bind(&s, index, proto).map_err(|e| ctx("binding a packet socket", e))?;
        join(&s, index, cluster_mac).map_err(|e| ctx("joining the cluster MAC", e))?;
        // Our own frames need not come back (Linux 4.20+; the link layer
        // ignores them anyway).
        let _ = set_int(&s, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1);
        // No PACKET_QDISC_BYPASS: its direct transmit drops a frame that
        // the device cannot take as it is (a super-packet to be cut in
        // software), where the queue's path cuts it.
        // Offload headers (Linux 2.6.39+ for packet sockets): frames as the
        // sender left them, with what is left to finish.
        let vnet = set_int(&s, libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1).is_ok();
        let ring = match ring_blocks {
            0 => None,
            n => ring(&s, n)
                .map_err(|e| warn!(port = interface, "no receive ring, reading with recvmmsg: {e}"))
                .ok(),
        };
        if set_int(&s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, SOCKET_BUFFER as i32).is_err() {
            let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
        }
        if set_int(&s, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, SOCKET_BUFFER as i32).is_err() {
            let _ = s.set_send_buffer_size(SOCKET_BUFFER);
        }
        s.set_nonblocking(true).map_err(|e| ctx("setting a packet socket non-blocking", e))?;
        // SAFETY: the `OwnedFd` owns the descriptor, open until it drops
        // with the `AsyncFd`, and `as_raw_fd` always returns that one.
        let io = unsafe { AsyncFd::register(OwnedFd::from(s)) }
            .map_err(|e| ctx("registering a packet socket", io::Error::from(e)))?;
        let rx = match ring {
            Some(r) => Rx::Ring(r),
            None => Rx::Slots(Slots::new()),
        };
        Ok(Self {
            io,
            name: interface.to_owned(),
            mac,
            mtu,
            vnet,
            rx,
            frames: Vec::with_capacity(SLOTS),
            drops: 0,
        })
    }

    /// Opens the TAP device `interface`: one the host made persistent and
    /// put in a bridge (`ip tuntap add dev NAME mode tap`), or else a new
    /// one that lives as long as this port. Its frames come one per
    /// `read`, go one per `write`, without offload headers (the host's
    /// stack finishes checksums and cuts super-packets before it hands
    /// frames to a TAP that takes no offloads). The device's own MAC is the
    /// node's; frames to the cluster MAC reach it as the bridge floods them.
    pub(crate) fn open_tap(interface: &str) -> Result<Self, GatewayError> {
        let ctx = |what: &str, e| GatewayError::io(format!("{what} (TAP device {interface})"), e);
        if interface.is_empty() || interface.len() >= libc::IFNAMSIZ {
            return Err(GatewayError::Config(format!(
                "{interface:?}: a TAP device's name has 1 to {} characters",
                libc::IFNAMSIZ - 1
            )));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| ctx("opening /dev/net/tun", e))?;
        // SAFETY: ifreq is plain old data, for which all zeroes is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, c) in ifr.ifr_name.iter_mut().zip(interface.bytes()) {
            *d = c as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads the ifreq (its name NUL-terminated, as
        // the name is shorter than IFNAMSIZ), alive for the call, on the
        // descriptor `file` owns.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut ifr) };
        if r < 0 {
            return Err(ctx("attaching to the TAP device", io::Error::last_os_error()));
        }
        let path = format!("/sys/class/net/{interface}");
        let sys = |f: &str| std::fs::read_to_string(format!("{path}/{f}")).map(|s| s.trim().to_owned());
        let mac = sys("address")
            .ok()
            .and_then(|a| parse_mac(&a))
            .ok_or_else(|| GatewayError::Config(format!("{interface}: no MAC address")))?;
        let mtu: usize = sys("mtu").ok().and_then(|m| m.parse().ok()).unwrap_or(1500);
        // SAFETY: as for a packet socket in `open`.
        let io = unsafe { AsyncFd::register(OwnedFd::from(file)) }
            .map_err(|e| ctx("registering a TAP device", io::Error::from(e)))?;
        Ok(Self {
            io,
            name: interface.to_owned(),
            mac,
            mtu,
            vnet: false,
            rx: Rx::Tap(Slots::new()),
            frames: Vec::with_capacity(SLOTS),
            drops: 0,
        })
    }

    /// The interface's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The interface's own MAC address.
    pub(crate) fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The interface's IP MTU.
    pub(crate) fn mtu(&self) -> usize {
        self.mtu
    }

    /// Waits until a frame may be waiting.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.io.readable().await.map(|mut g| g.retain_ready())
    }

    /// Whether frames come with offload headers (`PACKET_VNET_HDR`).
    pub(crate) fn offloads(&self) -> bool {
        self.vnet
    }

    /// Frames the kernel dropped so far for want of room in the ring.
    pub(crate) fn ring_drops(&self) -> u64 {
        self.drops
    }

    /// Gives the buffers of the last batch back (the ring's block to the
    /// kernel) and takes the next batch of frames: a block of the ring, or
    /// as many frames as there are slots with one `recvmmsg`. `WouldBlock`
    /// if none wait. The frames are `0..n`; their buffers stay ours until
    /// the next call.
    pub(crate) fn recv_batch(&mut self) -> io::Result<usize> {
        let Self { io, rx, frames, vnet, drops, .. } = self;
        frames.clear();
        let vnet = *vnet;
        io.try_io(Interest::READABLE, |s| match rx {
            Rx::Ring(ring) => {
                ring.release();
                if !ring.take(vnet, frames) {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                if ring.losing {
                    // Reading the statistics resets them, and the flag.
                    let lost = dropped_frames(s).unwrap_or(0);
                    *drops += lost;
                    if lost > 0 {
                        warn!(
                            frames = lost,
                            total = *drops,
                            "the receive ring was full: the kernel dropped frames"
                        );
                    }
                }
                Ok(frames.len())
            }
            Rx::Slots(slots) => {
                {
                    let mut iovs: Vec<[IoSliceMut<'_>; 2]> = slots
                        .vnet
                        .iter_mut()
                        .zip(slots.slots.iter_mut())
                        .map(|(h, slot)| {
                            let h: &mut [u8] = if vnet { h } else { &mut h[..0] };
                            [IoSliceMut::new(h), IoSliceMut::new(&mut slot[FRAME_AT..FRAME_AT + MAX_FRAME])]
                        })
                        .collect();
                    // MSG_TRUNC: the lengths are the frames' own, so a frame
                    // cut short shows.
                    let got = recvmmsg(
                        s.as_raw_fd(),
                        &mut slots.headers,
                        iovs.iter_mut(),
                        MsgFlags::MSG_TRUNC,
                        None,
                    )?;
                    let head = if vnet { VNET_HDR_LEN } else { 0 };
                    for (i, m) in got.enumerate() {
                        let len = m.bytes.saturating_sub(head);
                        let at = (m.bytes >= head && len <= MAX_FRAME).then_some(FRAME_AT..FRAME_AT + len);
                        frames.push(RxFrame { hdr: VnetHdr::default(), slot: i, at, head: None });
                    }
                }
                for f in frames.iter_mut() {
                    f.hdr = VnetHdr::parse(&slots.vnet[f.slot]);
                }
                Ok(frames.len())
            }
            Rx::Tap(slots) => {
                for (i, slot) in slots.slots.iter_mut().enumerate() {
                    match nix::unistd::read(s, &mut slot[FRAME_AT..FRAME_AT + MAX_FRAME]) {
                        Ok(n) => frames.push(RxFrame {
                            hdr: VnetHdr::default(),
                            slot: i,
                            at: Some(FRAME_AT..FRAME_AT + n),
                            head: None,
                        }),
                        Err(nix::errno::Errno::EAGAIN) if !frames.is_empty() => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(frames.len())
            }
        })
    }

    /// Frame `i` of the batch: its offload header, its buffer, and where
    /// it lies in that (`None`: it was cut short; drop it). The buffer has
    /// room before the frame for an ESP encapsulation in place and its
    /// Ethernet header; after it, [`TAIL`] octets in a slot, but maybe
    /// fewer for the last frame of a ring's block (check before writing
    /// past its end). Frames of a block are to be handled in order: one
    /// may grow into the descriptor of the next.
    pub(crate) fn frame(&mut self, i: usize) -> (VnetHdr, &mut [u8], Option<Range<usize>>) {
        let f = &self.frames[i];
        let (hdr, slot, at) = (f.hdr, f.slot, f.at.clone());
        let buf: &mut [u8] = match &mut self.rx {
            Rx::Ring(r) => {
                let b = r.held.unwrap_or(0);
                r.block(b)
            }
            Rx::Slots(s) | Rx::Tap(s) => &mut s.slots[slot],
        };
        (hdr, buf, at)
    }

    /// Frame `i` if the ring holds only its head (the socket's filter
    /// trimmed it; see [`Self::attach_filter`]): its offload header, where
    /// the head lies in [`Self::buf`], and the frame's length as it came.
    pub(crate) fn trimmed(&self, i: usize) -> Option<(VnetHdr, Range<usize>, usize)> {
        let f = &self.frames[i];
        f.head.clone().map(|(at, len)| (f.hdr, at, len))
    }

    /// Whether a filter attached may trim frames (frames cut short show
    /// as such only in a receive ring: see [`Self::trimmed`]).
    pub(crate) fn can_trim(&self) -> bool {
        matches!(self.rx, Rx::Ring(_))
    }

    /// Attaches the classic BPF program `filter` to the socket, replacing
    /// the one before (the kernel swaps them at once).
    pub(crate) fn attach_filter(&self, filter: &[socket2::SockFilter]) -> io::Result<()> {
        socket2::SockRef::from(self.io.get_ref()).attach_filter(filter)
    }

    /// The buffer of frame `i` (for writing frames that lie in it).
    pub(crate) fn buf(&self, i: usize) -> &[u8] {
        match &self.rx {
            Rx::Ring(r) => {
                let b = r.held.unwrap_or(0);
                // SAFETY: as in `Ring::block`: the block is held, and the
                // shared reference to `self` keeps `&mut` users away.
                unsafe { core::slice::from_raw_parts(r.map.as_ptr().add(b * RING_BLOCK), RING_BLOCK) }
            }
            Rx::Slots(s) | Rx::Tap(s) => &s.slots[self.frames[i].slot],
        }
    }

    /// Writes `msgs` in as few system calls as `tx` allows. A port
    /// without offload headers ([`Self::offloads`]) takes only messages
    /// whose header is empty (nothing to finish). A full queue drops the
    /// rest, as a switch port would; a message the kernel refuses is
    /// dropped alone.
    pub(crate) fn send_batch(&self, tx: &mut TxBatch, msgs: &Messages<'_>) -> Sent {
        if matches!(self.rx, Rx::Tap(_)) {
            return self.send_tap(msgs);
        }
        let fd = self.io.get_ref().as_raw_fd();
        // A message's first piece is its offload header, sent only on a
        // port that takes them.
        let mut iovs = Vec::with_capacity(msgs.pieces.len());
        for i in 0..msgs.len() {
            let m = msgs.get(i);
            let h: &[u8] = match (self.vnet, m[0].is_empty()) {
                (true, true) => &NO_OFFLOAD,
                (true, false) => m[0],
                (false, _) => &[],
            };
            iovs.push(IoSlice::new(h));
            iovs.extend(m[1..].iter().map(|p| IoSlice::new(p)));
        }
        let mut from = 0;
        let per_msg: Vec<&[IoSlice<'_>]> = msgs
            .ends
            .iter()
            .map(|&end| {
                let m = &iovs[from..end];
                from = end;
                m
            })
            .collect();
        let mut sent = Sent::default();
        let mut done = 0;
        while done < per_msg.len() {
            let chunk = &per_msg[done..per_msg.len().min(done + tx.none.len())];
            sent.calls += 1;
            let r =
                sendmmsg(fd, &mut tx.headers, chunk.iter(), &tx.none[..chunk.len()], [], MsgFlags::empty());
            match r.map(Iterator::count) {
                Ok(n) if n > 0 => {
                    sent.messages += n;
                    done += n;
                }
                Err(nix::errno::Errno::EAGAIN) | Ok(_) => {
                    sent.dropped += per_msg.len() - done;
                    break;
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    sent.dropped += 1;
                    done += 1;
                }
            }
        }
        sent
    }
}

impl PacketPort {
    /// [`Self::send_batch`] on a TAP device: a `writev` per message (a TAP
    /// takes no offload header).
    fn send_tap(&self, msgs: &Messages<'_>) -> Sent {
        let mut sent = Sent::default();
        for i in 0..msgs.len() {
            let iovs: Vec<IoSlice<'_>> = msgs.get(i).iter().skip(1).map(|p| IoSlice::new(p)).collect();
            sent.calls += 1;
            match nix::sys::uio::writev(self.io.get_ref(), &iovs) {
                Ok(_) => sent.messages += 1,
                Err(_) => sent.dropped += 1,
            }
        }
        sent
    }
}

/// `aa:bb:cc:dd:ee:ff` as octets.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for o in &mut mac {
        *o = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Binds `s` to interface `index` for ethertype `proto` (network order).
fn bind(s: &Socket, index: i32, proto: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data, for which all zeroes is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = index;
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `sll`, alive for the call;
    // the descriptor is owned by `s`.
    let r = unsafe { libc::bind(s.as_raw_fd(), (&raw const sll).cast(), len) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Makes interface `index` accept frames to `mac` for as long as `s` lives.
fn join(s: &Socket, index: i32, mac: [u8; 6]) -> io::Result<()> {
    // SAFETY: packet_mreq is plain old data, for which all zeroes is valid.
    let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mreq.mr_ifindex = index;
    // A multicast MAC joins the group filter; a unicast "never a source"
    // MAC the unicast filter.
    mreq.mr_type = if mac[0] & 1 != 0 { libc::PACKET_MR_MULTICAST } else { libc::PACKET_MR_UNICAST } as u16;
    mreq.mr_alen = 6;
    mreq.mr_address[..6].copy_from_slice(&mac);
    set_opt(s, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
}

/// Sets up and maps a `TPACKET_V3` receive ring of `blocks` blocks on `s`.
fn ring(s: &Socket, blocks: usize) -> io::Result<Ring> {
    let count = |n: usize| u32::try_from(n).map_err(|_| io::Error::other("ring too large"));
    set_int(s, libc::SOL_PACKET, libc::PACKET_VERSION, TPACKET_V3)?;
    set_int(s, libc::SOL_PACKET, libc::PACKET_RESERVE, RING_RESERVE as i32)?;
    let frame = 2048;
    let req = libc::tpacket_req3 {
        tp_block_size: RING_BLOCK as u32,
        tp_block_nr: count(blocks)?,
        tp_frame_size: frame as u32,
        tp_frame_nr: count(RING_BLOCK * blocks / frame)?,
        tp_retire_blk_tov: RING_TIMEOUT_MS,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    set_opt(s, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
    Ring::map(s.as_raw_fd(), blocks)
}

/// The frames the kernel dropped on `s` since the last call
/// (`PACKET_STATISTICS`, which resets the counters).
fn dropped_frames(s: &OwnedFd) -> io::Result<u64> {
    // struct tpacket_stats_v3: tp_packets, tp_drops, tp_freeze_q_cnt.
    let mut stats = [0u32; 3];
    let mut len = std::mem::size_of_val(&stats) as libc::socklen_t;
    // SAFETY: the pointer and length describe `stats`, alive and writable
    // for the call; the kernel writes at most `len` octets.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            stats.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    if r == 0 { Ok(u64::from(stats[1])) } else { Err(io::Error::last_os_error()) }
}

fn set_int(s: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    set_opt(s, level, name, &value)
}

/// `setsockopt` with a plain-old-data value.
fn set_opt<T: Copy>(s: &Socket, level: i32, name: i32, value: &T) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `value`, alive for the call;
    // `T: Copy` values here are C structs or integers the kernel only reads.
    let r = unsafe { libc::setsockopt(s.as_raw_fd(), level, name, (value as *const T).cast(), len) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_macs() {
        assert_eq!(parse_mac("01:00:5e:00:00:2a"), Some([1, 0, 0x5e, 0, 0, 0x2a]));
        assert_eq!(parse_mac("01:00:5e:00:00"), None);
        assert_eq!(parse_mac("01:00:5e:00:00:2a:00"), None);
        assert_eq!(parse_mac("zz:00:5e:00:00:2a"), None);
    }
}
