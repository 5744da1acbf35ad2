//! The data path's side of the event loop: when the NAT-T socket or the
//! TUN device is readable, drain it in batches (GRO reads and TSO
//! super-packets in, GSO sends and coalesced TUN writes out) and hand
//! every packet to the [`Dataplane`](crate::gateway::dataplane::Dataplane)
//! in between. IKE messages behind the non-ESP marker go to the engine.

use super::{Gateway, MAX_PACKET};
use crate::gateway::GatewayError;
use crate::gateway::tun::{ReadBatch, WriteBatch};
use crate::gateway::udp::GsoBatch;
use core::net::SocketAddr;
use core::ops::Range;
use std::io::ErrorKind;
use tracing::{debug, warn};

/// Reads from the TUN device (each a packet or a super-packet) per wakeup
/// before the sockets get a turn.
const TUN_READS: usize = 16;
/// Reads from the NAT-T socket (each up to 64 datagrams with GRO) per
/// wakeup before the TUN device gets a turn.
const NATT_READS: usize = 16;

/// The data path's preallocated buffers: what one wakeup read, and what it
/// will write.
pub(super) struct Batches {
    /// Plaintext packets read from the TUN device.
    from_tun: ReadBatch,
    /// ESP datagrams for the NAT-T socket.
    to_net: GsoBatch,
    /// Datagrams read from the NAT-T socket.
    from_net: Vec<u8>,
    /// Decapsulated packets for the TUN device.
    to_tun: WriteBatch,
}

impl Batches {
    pub(super) fn new() -> Self {
        Self {
            from_tun: ReadBatch::new(),
            to_net: GsoBatch::new(),
            from_net: vec![0; MAX_PACKET],
            to_tun: WriteBatch::new(),
        }
    }
}

impl Gateway {
    /// Drains the NAT-T socket (up to [`NATT_READS`] reads): datagrams in,
    /// decapsulated packets out to the TUN device in batches.
    pub(super) async fn drain_network(
        &mut self,
        local: SocketAddr,
        b: &mut Batches,
    ) -> Result<(), GatewayError> {
        for _ in 0..NATT_READS {
            let got = match self.natt.try_recv(&mut b.from_net) {
                Ok(got) => got,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error().is_some() => {
                    return Err(GatewayError::io("receiving on UDP 4500", e));
                }
                Err(e) => {
                    debug!("UDP 4500 datagram dropped: {e}");
                    continue;
                }
            };
            for range in got.ranges() {
                self.natt_datagram(local, got.from, &mut b.from_net, range, &mut b.to_tun);
                if b.to_tun.is_full() {
                    self.write_tun(&mut b.to_tun).await;
                }
            }
        }
        self.write_tun(&mut b.to_tun).await;
        Ok(())
    }

    /// Writes (and empties) a batch of decapsulated packets.
    async fn write_tun(&mut self, batch: &mut WriteBatch) {
        if let Err(e) = self.tun.send(batch).await {
            warn!("writing to the TUN device: {e}");
        }
    }

    /// A datagram on the NAT-T port at `buf[range]`: a keepalive, IKE
    /// behind the non-ESP marker, or ESP (RFC 3948 section 2), whose inner
    /// packet joins `to_tun`.
    fn natt_datagram(
        &mut self,
        local: SocketAddr,
        from: SocketAddr,
        buf: &mut [u8],
        range: Range<usize>,
        to_tun: &mut WriteBatch,
    ) {
        let data = &buf[range.clone()];
        if data == [0xff] {
            return;
        }
        if data.len() >= 4 && data[..4] == [0; 4] {
            let ike = data[4..].to_vec();
            self.ike_datagram(local, from, &ike);
            return;
        }
        match self.dp.decrypt(buf, range) {
            Ok(d) if d.next_header == 4 || d.next_header == 41 => {
                // The caller writes a full batch before the next datagram.
                let _ = to_tun.push(&buf[d.range]);
            }
            Ok(_) => {}
            Err(e) => debug!(%from, "ESP packet dropped: {e}"),
        }
    }

    /// Drains the TUN device (up to [`TUN_READS`] reads): plaintext in,
    /// ESP datagrams out in GSO batches.
    pub(super) async fn drain_tun(&mut self, b: &mut Batches) -> Result<(), GatewayError> {
        for _ in 0..TUN_READS {
            match self.tun.try_recv(&mut b.from_tun) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error().is_some() => {
                    return Err(GatewayError::io("reading the TUN device", e));
                }
                Err(e) => {
                    debug!("TUN packet dropped: {e}");
                    continue;
                }
            }
            for i in 0..b.from_tun.len() {
                let (buf, packet) = b.from_tun.packet_mut(i);
                match self.dp.encrypt(buf, packet) {
                    Ok((to, esp)) => {
                        if !b.to_net.push(to, &buf[esp.clone()]) {
                            self.send_esp(&mut b.to_net).await;
                            let _ = b.to_net.push(to, &buf[esp]);
                        }
                    }
                    Err(e) => debug!("plaintext packet dropped: {e}"),
                }
            }
        }
        self.send_esp(&mut b.to_net).await;
        Ok(())
    }

    /// Sends (and empties) a batch of ESP datagrams.
    async fn send_esp(&mut self, batch: &mut GsoBatch) {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.natt.send_batch(batch).await {
            debug!("sending ESP: {e}");
        }
    }
}
