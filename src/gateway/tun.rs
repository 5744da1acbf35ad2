//! The TUN device that carries plaintext IP packets between the host and
//! Tandem, read and written without blocking through tokio.
//!
//! The device is opened with virtio-net headers and TCP/UDP segmentation
//! offloads (`IFF_VNET_HDR`, `TUNSETOFFLOAD`), as wireguard-go does: the
//! host hands over whole TCP (or UDP) super-packets of up to 64 KiB, which
//! a read splits into MTU-sized packets ([`ReadBatch`]), and a write
//! coalesces consecutive segments of one flow back into super-packets
//! ([`WriteBatch`]), so one system call moves tens of packets each way.
//! `tun-rs` does the splitting, the coalescing and the checksums. Where the
//! kernel refuses the offloads the device carries one packet per call.

use super::GatewayError;
use std::io;
use tandem_esp::{HEADROOM, TAILROOM};
use tracing::warn;
use tun_rs::{AsyncDevice, DeviceBuilder, GROTable, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

/// The largest IP packet (and TSO super-packet) the device hands over.
const MAX_PACKET: usize = 65_535;

/// A TUN device (no packet-information header).
pub(crate) struct Tun {
    dev: AsyncDevice,
    name: String,
    index: u32,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name`, with offloads where
    /// the kernel has them.
    pub(crate) fn open(name: &str) -> Result<Self, GatewayError> {
        let ctx = |e| GatewayError::io(format!("creating TUN device {name}"), e);
        let build = |offload: bool| DeviceBuilder::new().name(name).offload(offload).build_async();
        let dev = match build(true) {
            Ok(dev) => dev,
            Err(e) => {
                warn!("TUN device with offloads refused ({e}); trying without: one packet per call");
                build(false).map_err(ctx)?
            }
        };
        let name = dev.name().map_err(ctx)?;
        let path = format!("/sys/class/net/{name}/ifindex");
        let index = std::fs::read_to_string(&path)
            .map_err(|e| GatewayError::io(format!("reading {path}"), e))?
            .trim()
            .parse()
            .map_err(|_| GatewayError::Unsupported("unreadable TUN interface index"))?;
        Ok(Self { dev, name, index })
    }

    /// The kernel's index of the device.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The device's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether the device hands over (and takes) super-packets.
    pub(crate) fn offloads(&self) -> bool {
        self.dev.tcp_gso()
    }

    /// Waits until a read may find a packet.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.dev.readable().await
    }

    /// Reads what is waiting (one packet, or one super-packet split into
    /// segments) into `batch`, replacing its contents. `WouldBlock` when
    /// nothing is; other errors without an OS error code are malformed
    /// super-packets, dropped.
    pub(crate) fn try_recv(&self, batch: &mut ReadBatch) -> io::Result<usize> {
        batch.count = 0;
        let ReadBatch { raw, slots, sizes, .. } = batch;
        let n = self.dev.try_recv_multiple(raw, slots, sizes, HEADROOM)?;
        batch.count = n;
        Ok(n)
    }

    /// Writes the packets of `batch` (coalesced where they continue one
    /// another) and empties it. A full device queue drops what does not
    /// fit, as a router would.
    pub(crate) async fn send(&self, batch: &mut WriteBatch) -> io::Result<()> {
        if batch.len == 0 {
            return Ok(());
        }
        let WriteBatch { bufs, len, gro } = batch;
        let r = self.dev.send_multiple(gro, &mut bufs[..*len], VIRTIO_NET_HDR_LEN).await;
        *len = 0;
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

/// Plaintext packets read from the device, each in its own buffer at
/// [`HEADROOM`] with [`TAILROOM`] after it, so ESP encapsulation works in
/// place.
pub(crate) struct ReadBatch {
    /// The raw read: virtio-net header and (super-)packet.
    raw: Vec<u8>,
    slots: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    count: usize,
}

impl ReadBatch {
    /// Room for the largest super-packet's segments.
    pub(crate) fn new() -> Self {
        Self {
            raw: vec![0; VIRTIO_NET_HDR_LEN + MAX_PACKET],
            slots: (0..IDEAL_BATCH_SIZE).map(|_| vec![0; HEADROOM + MAX_PACKET + TAILROOM]).collect(),
            sizes: vec![0; IDEAL_BATCH_SIZE],
            count: 0,
        }
    }

    /// How many packets the last read produced.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Packet `i`: its buffer and where the packet is in it.
    pub(crate) fn packet_mut(&mut self, i: usize) -> (&mut [u8], core::ops::Range<usize>) {
        let len = self.sizes.get(i).copied().unwrap_or(0);
        match self.slots.get_mut(i) {
            Some(slot) => (slot.as_mut_slice(), HEADROOM..HEADROOM + len),
            None => (&mut [], 0..0),
        }
    }
}

/// Plaintext packets to write to the device in one go.
pub(crate) struct WriteBatch {
    /// Each packet at `VIRTIO_NET_HDR_LEN`, the header's room before it.
    bufs: Vec<Vec<u8>>,
    len: usize,
    gro: GROTable,
}

impl WriteBatch {
    /// An empty batch.
    pub(crate) fn new() -> Self {
        Self {
            // Coalescing appends to the first packet of a flow in place, and
            // only where the buffer has room for a whole super-packet.
            bufs: (0..IDEAL_BATCH_SIZE)
                .map(|_| Vec::with_capacity(2 * VIRTIO_NET_HDR_LEN + MAX_PACKET))
                .collect(),
            len: 0,
            gro: GROTable::default(),
        }
    }

    /// Adds a copy of `packet` (an empty one is ignored); false when the
    /// batch is full (write it first).
    pub(crate) fn push(&mut self, packet: &[u8]) -> bool {
        if packet.is_empty() {
            return true;
        }
        let Some(buf) = self.bufs.get_mut(self.len) else {
            return false;
        };
        buf.clear();
        buf.resize(VIRTIO_NET_HDR_LEN, 0);
        buf.extend_from_slice(packet);
        self.len += 1;
        true
    }

    /// Whether no more packets fit.
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.bufs.len()
    }
}
