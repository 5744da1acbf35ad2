//! What the engine reports: SAs established or failed, with everything the
//! data path (and, later, a cluster standby) needs.

use crate::Error;
use crate::wire::TrafficSelector;
use core::net::{IpAddr, SocketAddr};
use tandem_crypto::cbc_hmac::IntegAlgorithm;
use tandem_crypto::proposal::EncrAlgorithm;
use tandem_crypto::secret::SecretBytes;

/// Handle of an IKE SA in an [`Endpoint`](crate::endpoint::Endpoint): our SPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaId(pub u64);

/// An event of the engine, drained with `Endpoint::poll_event`.
#[derive(Debug)]
pub enum Event {
    /// An IKE SA completed IKE_AUTH.
    IkeSaEstablished {
        /// The SA.
        sa: IkeSaId,
        /// Initiator's SPI.
        spi_i: u64,
        /// Responder's SPI.
        spi_r: u64,
        /// The peer's address.
        remote: SocketAddr,
        /// What NAT detection found.
        nat: NatState,
        /// Virtual addresses (RFC 7296 section 2.19): as responder, those
        /// leased to the peer; as initiator, those assigned to us.
        virtual_ips: Vec<IpAddr>,
        /// As initiator, the DNS servers the responder sent with our
        /// virtual address; empty otherwise.
        dns: Vec<IpAddr>,
    },
    /// A CHILD_SA was negotiated: install it in the data path.
    ChildSaEstablished(ChildSa),
    /// The first CHILD_SA was refused, though its IKE SA is up.
    ChildSaFailed {
        /// The IKE SA.
        sa: IkeSaId,
        /// Why.
        error: Error,
    },
    /// A CHILD_SA was rekeyed: install `new` beside the old pair, which is
    /// deleted (with [`Event::ChildSaDeleted`]) once the exchange is done.
    ///
    /// When both peers rekey the pair at once (RFC 7296 section 2.8.1),
    /// this comes twice for the same old pair, once per new pair (the
    /// second may come as [`Event::ChildSaEstablished`] if the old pair is
    /// gone by then); the redundant new pair and the old one then each get
    /// an [`Event::ChildSaDeleted`]. Accept traffic on every pair until it
    /// is deleted.
    ChildSaRekeyed {
        /// The IKE SA.
        sa: IkeSaId,
        /// The old pair's inbound SPI.
        old_inbound_spi: u32,
        /// The old pair's outbound SPI.
        old_outbound_spi: u32,
        /// The new pair.
        new: ChildSa,
    },
    /// The IKE SA was rekeyed (section 2.18): its CHILD_SAs now belong to
    /// `new`; the old one is deleted next. Once per rekey, also when both
    /// peers rekeyed at once (section 2.8.2): `new` is then the surviving
    /// IKE SA, and the redundant one is not reported.
    IkeSaRekeyed {
        /// The old IKE SA.
        old: IkeSaId,
        /// The new IKE SA.
        new: IkeSaId,
    },
    /// A CHILD_SA ended (deleted by either side, or with its IKE SA):
    /// remove it from the data path.
    ChildSaDeleted {
        /// The IKE SA.
        sa: IkeSaId,
        /// The SPI we received with.
        inbound_spi: u32,
        /// The SPI we sent with.
        outbound_spi: u32,
    },
    /// An established IKE SA ended: deleted by either side (`error` is
    /// `None`), or its peer stopped answering (`Some(Timeout)`).
    IkeSaDeleted {
        /// The SA.
        sa: IkeSaId,
        /// Why, when it was not an orderly delete.
        error: Option<Error>,
    },
    /// An IKE SA failed before it was established, or the peer refused it.
    IkeSaFailed {
        /// The SA.
        sa: IkeSaId,
        /// Why.
        error: Error,
    },
}

/// What NAT detection found (RFC 7296 section 2.23).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NatState {
    /// Our address is translated on the way to the peer.
    pub local_behind_nat: bool,
    /// The peer's address is translated on the way to us.
    pub remote_behind_nat: bool,
}

impl NatState {
    /// Whether any NAT is in the path: IKE then uses port 4500 and ESP is
    /// UDP-encapsulated (RFC 3948).
    pub fn detected(&self) -> bool {
        self.local_behind_nat || self.remote_behind_nat
    }
}

/// A negotiated ESP CHILD_SA pair.
#[derive(Clone)]
pub struct ChildSa {
    /// The IKE SA it belongs to.
    pub ike_sa: IkeSaId,
    /// Our address and port (the UDP-encapsulation source when `udp_encap`).
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// ESP travels in UDP (RFC 3948) between `local` and `remote`.
    pub udp_encap: bool,
    /// The SPI we receive with (we chose it).
    pub inbound_spi: u32,
    /// The SPI we send with (the peer chose it).
    pub outbound_spi: u32,
    /// Encryption.
    pub encr: EncrAlgorithm,
    /// Integrity, for non-AEAD encryption.
    pub integ: Option<IntegAlgorithm>,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Our traffic selectors, as narrowed.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's traffic selectors, as narrowed.
    pub remote_ts: Vec<TrafficSelector>,
    pub(crate) inbound_keymat: SecretBytes,
    pub(crate) outbound_keymat: SecretBytes,
}

impl ChildSa {
    /// KEYMAT of the inbound SA (encryption key and salt, then integrity
    /// key): secret, to be handed only to the data path or a cluster peer.
    pub fn dangerous_inbound_keymat(&self) -> &[u8] {
        self.inbound_keymat.expose()
    }

    /// KEYMAT of the outbound SA; see [`Self::dangerous_inbound_keymat`].
    pub fn dangerous_outbound_keymat(&self) -> &[u8] {
        self.outbound_keymat.expose()
    }
}

impl core::fmt::Debug for ChildSa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChildSa")
            .field("ike_sa", &self.ike_sa)
            .field("inbound_spi", &format_args!("{:#010x}", self.inbound_spi))
            .field("outbound_spi", &format_args!("{:#010x}", self.outbound_spi))
            .field("encr", &self.encr)
            .field("integ", &self.integ)
            .field("esn", &self.esn)
            .field("udp_encap", &self.udp_encap)
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .finish_non_exhaustive()
    }
}
