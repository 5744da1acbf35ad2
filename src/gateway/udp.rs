//! The gateway's UDP sockets. The NAT-T socket (UDP 4500) carries the ESP
//! data path (RFC 3948) and is batched: large kernel buffers (a burst must
//! not overflow it while the loop waits for a CPU), UDP GRO on receive (one
//! read returns up to 64 datagrams of one flow, see [`Datagrams`]) and UDP
//! GSO on send (one write carries up to 64 equal-size datagrams to one
//! peer, see [`GsoBatch`]). Where the kernel lacks GSO or GRO the socket
//! falls back to a datagram per call.

use super::GatewayError;
use core::net::SocketAddr;
use core::ops::Range;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::{debug, warn};

/// The NAT-T socket's receive and send buffer sizes.
const SOCKET_BUFFER: usize = 8 << 20;
/// The most datagrams in one GSO send (the kernel's `UDP_MAX_SEGMENTS`).
const MAX_SEGMENTS: usize = 64;
/// The most octets in one GSO send: the largest IP packet less the UDP
/// header and an IPv6 header.
const MAX_GSO_PAYLOAD: usize = 65_535 - 40 - 8;

/// A UDP socket bound to `addr`, marked so its packets bypass the tunnel
/// routes.
fn socket(addr: SocketAddr, fwmark: u32) -> Result<Socket, GatewayError> {
    let ctx = |e| GatewayError::io(format!("binding UDP {addr}"), e);
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(ctx)?;
    s.set_reuse_address(true).map_err(ctx)?;
    s.set_mark(fwmark).map_err(ctx)?;
    s.set_nonblocking(true).map_err(ctx)?;
    s.bind(&addr.into()).map_err(ctx)?;
    Ok(s)
}

/// A plain UDP socket (IKE on port 500).
pub(crate) fn bind(addr: SocketAddr, fwmark: u32) -> Result<UdpSocket, GatewayError> {
    UdpSocket::from_std(socket(addr, fwmark)?.into()).map_err(|e| GatewayError::io(format!("UDP {addr}"), e))
}

/// Sets the buffers to [`SOCKET_BUFFER`]: with `SO_RCVBUFFORCE` and
/// `SO_SNDBUFFORCE` where we may (`CAP_NET_ADMIN`), else as far as
/// `net.core.rmem_max` and `wmem_max` allow.
fn grow_buffers(s: &Socket) {
    if setsockopt(s, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    }
    if setsockopt(s, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
        let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    }
}

/// The NAT-T socket, batched both ways.
pub(crate) struct NattSocket {
    io: UdpSocket,
    /// UDP GSO works (until a send says otherwise).
    gso: bool,
    /// Room for the GRO segment-size control message.
    cmsg: Vec<u8>,
}

/// What one read returned: `len` octets from `from`, datagrams of `stride`
/// octets back to back (the last may be shorter).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Datagrams {
    /// The sender.
    pub(crate) from: SocketAddr,
    len: usize,
    stride: usize,
}

impl Datagrams {
    /// Where each datagram is in the buffer.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = Range<usize>> + use<> {
        let (len, stride) = (self.len, self.stride.max(1));
        (0..len).step_by(stride).map(move |start| start..len.min(start + stride))
    }
}

impl NattSocket {
    /// Binds the socket with large buffers and GRO on.
    pub(crate) fn bind(addr: SocketAddr, fwmark: u32) -> Result<Self, GatewayError> {
        let s = socket(addr, fwmark)?;
        grow_buffers(&s);
        let gro = setsockopt(&s, sockopt::UdpGroSegment, &true).is_ok();
        let gso = nix::sys::socket::getsockopt(&s, sockopt::UdpGsoSegment).is_ok();
        debug!(
            rcvbuf = s.recv_buffer_size().unwrap_or(0),
            sndbuf = s.send_buffer_size().unwrap_or(0),
            gro,
            gso,
            "NAT-T socket {addr}"
        );
        let io = UdpSocket::from_std(s.into()).map_err(|e| GatewayError::io(format!("UDP {addr}"), e))?;
        Ok(Self { io, gso, cmsg: nix::cmsg_space!(i32) })
    }

    /// Waits until a read may find a datagram.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Reads what is waiting (a datagram, or several of one flow coalesced
    /// by GRO) into `buf`; `WouldBlock` when nothing is.
    pub(crate) fn try_recv(&mut self, buf: &mut [u8]) -> io::Result<Datagrams> {
        let fd = self.io.as_raw_fd();
        let cmsg = &mut self.cmsg;
        self.io.try_io(Interest::READABLE, || {
            let mut iov = [IoSliceMut::new(buf)];
            let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(cmsg.as_mut_slice()), MsgFlags::empty())?;
            // Without the GRO control message the read is one datagram.
            let stride = msg
                .cmsgs()
                .into_iter()
                .flatten()
                .find_map(|c| match c {
                    ControlMessageOwned::UdpGroSegments(size) => usize::try_from(size).ok(),
                    _ => None,
                })
                .unwrap_or(msg.bytes);
            let from = msg
                .address
                .as_ref()
                .and_then(socket_addr)
                .ok_or_else(|| io::Error::other("datagram without a source address"))?;
            Ok(Datagrams { from, len: msg.bytes, stride })
        })
    }

    /// Sends one datagram.
    pub(crate) async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        self.send(data, to, None).await
    }

    /// Sends the datagrams of `batch` (in one call with GSO) and empties it.
    pub(crate) async fn send_batch(&mut self, batch: &mut GsoBatch) -> io::Result<()> {
        let Some(to) = batch.to else {
            return Ok(());
        };
        let segment = u16::try_from(batch.segment).ok().filter(|s| *s > 0);
        let r = match segment {
            Some(size) if self.gso && batch.count > 1 => match self.send(&batch.buf, to, Some(size)).await {
                Err(e) => {
                    warn!("UDP GSO send refused ({e}); one datagram per call from now on");
                    self.gso = false;
                    self.send_each(batch, to).await
                }
                ok => ok,
            },
            _ => self.send_each(batch, to).await,
        };
        batch.clear();
        r
    }

    /// Sends the datagrams of `batch` one by one; the first error, if any.
    async fn send_each(&self, batch: &GsoBatch, to: SocketAddr) -> io::Result<()> {
        let mut result = Ok(());
        for chunk in batch.buf.chunks(batch.segment.max(1)) {
            if let Err(e) = self.send(chunk, to, None).await {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// One `sendmsg`, with a GSO segment size when `segment` is given;
    /// waits while the socket buffer is full.
    async fn send(&self, data: &[u8], to: SocketAddr, segment: Option<u16>) -> io::Result<()> {
        let addr = SockaddrStorage::from(to);
        let fd = self.io.as_raw_fd();
        let size = segment.unwrap_or(0);
        let gso = [ControlMessage::UdpGsoSegments(&size)];
        let cmsgs: &[ControlMessage<'_>] = if segment.is_some() { &gso } else { &[] };
        loop {
            self.io.writable().await?;
            let r = self.io.try_io(Interest::WRITABLE, || {
                sendmsg(fd, &[IoSlice::new(data)], cmsgs, MsgFlags::empty(), Some(&addr))
                    .map(|_| ())
                    .map_err(io::Error::from)
            });
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }
}

/// The standard socket address of a `nix` one (IPv4 or IPv6).
fn socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(a) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4((*a).into()));
    }
    s.as_sockaddr_in6().map(|a| SocketAddr::V6((*a).into()))
}

/// ESP datagrams to one peer, back to back, for one GSO send: all of one
/// size but the last, which may be shorter.
pub(crate) struct GsoBatch {
    buf: Vec<u8>,
    to: Option<SocketAddr>,
    segment: usize,
    count: usize,
    /// A shorter datagram ended the batch.
    closed: bool,
}

impl GsoBatch {
    /// An empty batch.
    pub(crate) fn new() -> Self {
        Self { buf: Vec::with_capacity(MAX_GSO_PAYLOAD), to: None, segment: 0, count: 0, closed: false }
    }

    /// Adds a copy of `datagram` for `to`; false when it cannot join (send
    /// the batch first).
    pub(crate) fn push(&mut self, to: SocketAddr, datagram: &[u8]) -> bool {
        if self.count == 0 {
            (self.to, self.segment, self.closed) = (Some(to), datagram.len(), false);
        } else {
            let fits = self.to == Some(to)
                && !self.closed
                && datagram.len() <= self.segment
                && self.count < MAX_SEGMENTS
                && self.buf.len() + datagram.len() <= MAX_GSO_PAYLOAD;
            if !fits {
                return false;
            }
            self.closed = datagram.len() < self.segment;
        }
        self.buf.extend_from_slice(datagram);
        self.count += 1;
        true
    }

    /// Whether nothing waits to be sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn clear(&mut self) {
        self.buf.clear();
        (self.to, self.count) = (None, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn batches_equal_datagrams_to_one_peer() {
        let mut b = GsoBatch::new();
        assert!(b.push(peer(4500), &[1; 100]));
        assert!(b.push(peer(4500), &[2; 100]));
        assert!(!b.push(peer(4501), &[3; 100]), "another peer");
        assert!(!b.push(peer(4500), &[3; 101]), "a longer datagram");
        assert!(b.push(peer(4500), &[3; 60]), "a shorter one ends the batch");
        assert!(!b.push(peer(4500), &[4; 60]));
        assert_eq!((b.count, b.segment, b.buf.len()), (3, 100, 260));
        b.clear();
        assert!(b.is_empty());
        assert!(b.push(peer(4501), &[5; 10]));
    }

    #[test]
    fn batches_stay_within_the_gso_limits() {
        let mut b = GsoBatch::new();
        let n = (0..1000).take_while(|_| b.push(peer(4500), &[0; 1436])).count();
        assert_eq!(n, MAX_GSO_PAYLOAD / 1436);
        let mut small = GsoBatch::new();
        let n = (0..1000).take_while(|_| small.push(peer(4500), &[0; 80])).count();
        assert_eq!(n, MAX_SEGMENTS);
    }

    #[test]
    fn splits_a_gro_read_at_the_stride() {
        let d = Datagrams { from: peer(4500), len: 250, stride: 100 };
        assert_eq!(d.ranges().collect::<Vec<_>>(), vec![0..100, 100..200, 200..250]);
        let one = Datagrams { from: peer(4500), len: 40, stride: 40 };
        assert_eq!(one.ranges().collect::<Vec<_>>(), vec![0..40]);
        let empty = Datagrams { from: peer(4500), len: 0, stride: 0 };
        assert_eq!(empty.ranges().count(), 0);
    }
}
