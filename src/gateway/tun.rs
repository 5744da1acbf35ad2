//! The TUN device that carries plaintext IP packets between the host and
//! Tandem, read and written without blocking through tokio.

use super::GatewayError;
use std::io;
use tokio::io::unix::AsyncFd;
use tun_tap::{Iface, Mode};

/// A TUN device (no packet-information header).
pub(crate) struct Tun {
    fd: AsyncFd<Iface>,
    index: u32,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name`.
    pub(crate) fn open(name: &str) -> Result<Self, GatewayError> {
        let ctx = |e| GatewayError::io(format!("creating TUN device {name}"), e);
        let iface = Iface::without_packet_info(name, Mode::Tun).map_err(ctx)?;
        iface.set_non_blocking().map_err(ctx)?;
        let path = format!("/sys/class/net/{}/ifindex", iface.name());
        let index = std::fs::read_to_string(&path)
            .map_err(|e| GatewayError::io(format!("reading {path}"), e))?
            .trim()
            .parse()
            .map_err(|_| GatewayError::Unsupported("unreadable TUN interface index"))?;
        // `Iface` owns its descriptor for its whole life, as the reactor
        // needs; `AsyncFd::register` says so with `unsafe`, which Tandem
        // forbids.
        #[allow(deprecated)]
        let fd = AsyncFd::new(iface).map_err(ctx)?;
        Ok(Self { fd, index })
    }

    /// The kernel's index of the device.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The device's name.
    pub(crate) fn name(&self) -> &str {
        self.fd.get_ref().name()
    }

    /// Waits for a packet and reads it into `buf`.
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|f| f.get_ref().recv(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads a packet if one is waiting.
    pub(crate) fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.get_ref().recv(buf)
    }

    /// Writes one packet; a full queue drops it (as a router would).
    pub(crate) fn send(&self, packet: &[u8]) -> io::Result<()> {
        match self.fd.get_ref().send(packet) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}
