//! A raw Ethernet port on AF_PACKET: every frame of one interface in, whole
//! frames out, and the interface told to accept the cluster MAC
//! (`PACKET_ADD_MEMBERSHIP`; no promiscuous mode).
//!
//! Binding a packet socket to an interface and joining a link-layer group
//! have no safe wrapper in `socket2` or `nix`, so this module makes those
//! two system calls itself, and registers the socket with tokio (the only
//! `unsafe` of the package); everything else goes through `socket2`.
#![allow(unsafe_code)]

use super::GatewayError;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The receive and send buffers of a port.
const SOCKET_BUFFER: usize = 8 << 20;

/// One interface's frames.
pub(crate) struct PacketPort {
    io: AsyncFd<Socket>,
    name: String,
    mac: [u8; 6],
    mtu: usize,
}

impl PacketPort {
    /// Opens `interface` for every ethertype, with `cluster_mac` accepted.
    pub(crate) fn open(interface: &str, cluster_mac: [u8; 6]) -> Result<Self, GatewayError> {
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
        if set_int(&s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, SOCKET_BUFFER as i32).is_err() {
            let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
        }
        if set_int(&s, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, SOCKET_BUFFER as i32).is_err() {
            let _ = s.set_send_buffer_size(SOCKET_BUFFER);
        }
        s.set_nonblocking(true).map_err(|e| ctx("setting a packet socket non-blocking", e))?;
        // SAFETY: `Socket` owns its descriptor, open until the socket drops
        // with the `AsyncFd`, and `as_raw_fd` always returns that one.
        let io = unsafe { AsyncFd::register(s) }
            .map_err(|e| ctx("registering a packet socket", io::Error::from(e)))?;
        Ok(Self { io, name: interface.to_owned(), mac, mtu })
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

    /// Reads one frame into `buf` if one is waiting (`WouldBlock` if not).
    pub(crate) fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.try_io(Interest::READABLE, |s| (&*s).read(buf))
    }

    /// Writes one frame; a full queue drops it, as a switch port would.
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<()> {
        match self.io.get_ref().send(frame) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
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
