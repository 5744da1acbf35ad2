//! Sealing and opening sync datagrams.
//!
//! Each direction of each sender incarnation has its own key:
//!
//! ```text
//! K = prf+(HMAC-SHA-256, cluster secret,
//!          "tandem sync v1" | alg | cluster id (u32) | sender (u8)
//!          | receiver (u8) | sender epoch (u64))          [key length]
//! nonce = 0x00000000 | packet number (u64)
//! datagram = header | AEAD(K, nonce, aad = header, body) | tag
//! ```
//!
//! The packet number only increases within an epoch, and a restart draws
//! a new random 64-bit epoch, so a (key, nonce) pair never repeats; keys of
//! different senders, receivers or incarnations are independent. The
//! secret itself never goes on the wire, and a node of another cluster (or
//! with another secret or algorithm) fails authentication.
//!
//! A handover mark (one frame to every node, see [`SyncKeys::seal_mark`])
//! is authenticated with a key of its own:
//!
//! ```text
//! KM = HMAC-SHA-256(cluster secret, "tandem mark v1" | cluster id)
//! mark = "TDMK" | cluster id (u32) | sender (u8) | segments (u64)
//!        | HMAC-SHA-256(KM, those 17 octets) [first 16 octets]
//! ```
//!
//! It carries no counter: a mark replayed can only end a handover's
//! settling early (see `Node::handover_mark`), which risks a packet served
//! twice, never one lost or a key exposed.

use super::wire::{HEADER_LEN, Header, MAX_DATAGRAM, TAG_LEN};
use crate::{Error, NodeId, SegmentSet};
use rand_core::CryptoRng;
use tandem_crypto::aead::{AeadAlgorithm, AeadCipher, NONCE_LEN, Provider};
use tandem_crypto::prf::PrfAlgorithm;
use tandem_crypto::secret::{SecretBytes, ct_eq};

/// The label that domain-separates sync keys from anything else keyed by
/// the cluster secret.
pub const KEY_LABEL: &[u8] = b"tandem sync v1";
/// The shortest cluster secret accepted, in octets.
pub const MIN_SECRET_LEN: usize = 16;
/// The label of the key that authenticates handover marks.
pub const MARK_LABEL: &[u8] = b"tandem mark v1";
/// A handover mark's first octets (no IP packet starts so).
pub const MARK_MAGIC: [u8; 4] = *b"TDMK";
/// A handover mark's length: magic, cluster id, sender, segments, tag.
pub const MARK_LEN: usize = 4 + 4 + 1 + 8 + MARK_TAG_LEN;
/// The octets of HMAC-SHA-256 a mark keeps.
const MARK_TAG_LEN: usize = 16;

/// Draws a new epoch for this node's incarnation: random, never zero.
pub fn new_epoch<R: CryptoRng + ?Sized>(rng: &mut R) -> u64 {
    loop {
        let e = rng.next_u64();
        if e != 0 {
            return e;
        }
    }
}

/// The cluster secret and what every sync key is bound to.
#[derive(Clone)]
pub struct SyncKeys {
    secret: SecretBytes,
    cluster_id: u32,
    alg: AeadAlgorithm,
    provider: Provider,
}

impl core::fmt::Debug for SyncKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SyncKeys")
            .field("cluster_id", &self.cluster_id)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SyncKeys {
    /// Keys from the configured cluster secret (at least
    /// [`MIN_SECRET_LEN`] octets), cluster id and AEAD (all nodes must
    /// agree on all three), with the build's preferred AEAD provider.
    pub fn new(secret: &[u8], cluster_id: u32, alg: AeadAlgorithm) -> Result<Self, Error> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::SyncKey("cluster secret shorter than 16 octets"));
        }
        if alg == AeadAlgorithm::Aes128Gcm16 {
            return Err(Error::SyncKey("sync needs a 256-bit AEAD"));
        }
        Ok(Self { secret: SecretBytes::from_slice(secret), cluster_id, alg, provider: Provider::preferred() })
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> u32 {
        self.cluster_id
    }

    /// The key sealing what `sender` in `epoch` sends to `receiver`.
    pub fn direction(&self, sender: NodeId, receiver: NodeId, epoch: u64) -> Result<DirectionKey, Error> {
        let alg_id = match self.alg {
            AeadAlgorithm::Aes128Gcm16 => 1u8,
            AeadAlgorithm::Aes256Gcm16 => 2,
            AeadAlgorithm::ChaCha20Poly1305 => 3,
        };
        let mut seed = Vec::with_capacity(KEY_LABEL.len() + 15);
        seed.extend_from_slice(KEY_LABEL);
        seed.push(alg_id);
        seed.extend_from_slice(&self.cluster_id.to_be_bytes());
        seed.extend_from_slice(&[sender.0, receiver.0]);
        seed.extend_from_slice(&epoch.to_be_bytes());
        let key = PrfAlgorithm::HmacSha256
            .prf_plus(self.secret.expose(), &seed, self.alg.key_len())
            .map_err(|_| Error::SyncKey("prf+ failed"))?;
        let cipher =
            self.provider.cipher(self.alg, key.expose()).map_err(|_| Error::SyncKey("AEAD keying failed"))?;
        Ok(DirectionKey { cipher, cluster_id: self.cluster_id, sender, receiver, epoch })
    }

    /// A handover mark: `sender` no longer serves `segments`. The node
    /// sends it to every node on the port its plaintext comes in by, after
    /// the frames it served (see `Node::handover_mark`).
    pub fn seal_mark(&self, sender: NodeId, segments: SegmentSet) -> [u8; MARK_LEN] {
        let mut m = [0u8; MARK_LEN];
        m[..4].copy_from_slice(&MARK_MAGIC);
        m[4..8].copy_from_slice(&self.cluster_id.to_be_bytes());
        m[8] = sender.0;
        m[9..17].copy_from_slice(&segments.bits().to_be_bytes());
        let tag = self.mark_tag(&m[..MARK_LEN - MARK_TAG_LEN]);
        m[MARK_LEN - MARK_TAG_LEN..].copy_from_slice(&tag.expose()[..MARK_TAG_LEN]);
        m
    }

    /// Opens a handover mark (the first [`MARK_LEN`] octets of `mark`; a
    /// frame's padding may follow): its sender and segments.
    pub fn open_mark(&self, mark: &[u8]) -> Result<(NodeId, SegmentSet), Error> {
        let m = mark.get(..MARK_LEN).ok_or(Error::SyncMalformed("handover mark too short"))?;
        if m[..4] != MARK_MAGIC {
            return Err(Error::SyncMalformed("not a handover mark"));
        }
        if m[4..8] != self.cluster_id.to_be_bytes() {
            return Err(Error::SyncMisaddressed);
        }
        let tag = self.mark_tag(&m[..MARK_LEN - MARK_TAG_LEN]);
        if !ct_eq(&tag.expose()[..MARK_TAG_LEN], &m[MARK_LEN - MARK_TAG_LEN..]) {
            return Err(Error::SyncAuth);
        }
        let mut bits = [0u8; 8];
        bits.copy_from_slice(&m[9..17]);
        Ok((NodeId(m[8]), SegmentSet::from_bits(u64::from_be_bytes(bits))))
    }

    fn mark_tag(&self, body: &[u8]) -> SecretBytes {
        let key =
            PrfAlgorithm::HmacSha256.prf(self.secret.expose(), &[MARK_LABEL, &self.cluster_id.to_be_bytes()]);
        PrfAlgorithm::HmacSha256.prf(key.expose(), &[body])
    }
}

/// The key of one (sender, receiver, sender epoch): seals on the sender,
/// opens on the receiver.
pub struct DirectionKey {
    cipher: Box<dyn AeadCipher>,
    cluster_id: u32,
    sender: NodeId,
    receiver: NodeId,
    epoch: u64,
}

impl core::fmt::Debug for DirectionKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DirectionKey")
            .field("sender", &self.sender)
            .field("receiver", &self.receiver)
            .field("epoch", &format_args!("{:#018x}", self.epoch))
            .finish_non_exhaustive()
    }
}

fn nonce(packet_number: u64) -> [u8; NONCE_LEN] {
    let mut n = [0; NONCE_LEN];
    n[NONCE_LEN - 8..].copy_from_slice(&packet_number.to_be_bytes());
    n
}

impl DirectionKey {
    /// The epoch this key belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn check(&self, h: &Header) -> Result<(), Error> {
        if h.cluster_id != self.cluster_id || h.sender != self.sender || h.receiver != self.receiver {
            return Err(Error::SyncMisaddressed);
        }
        if h.epoch != self.epoch {
            return Err(Error::SyncAuth);
        }
        Ok(())
    }

    /// Seals `body` behind the encoded `header` (which may carry an
    /// extension; its `header_len` must match) into a new datagram. The
    /// caller guarantees the header's packet number was never sealed before
    /// under this key.
    pub fn seal(&self, header: &[u8], body: &[u8]) -> Result<Vec<u8>, Error> {
        let total = header.len() + body.len() + TAG_LEN;
        if total > MAX_DATAGRAM {
            return Err(Error::SyncTooLarge(total));
        }
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(header);
        out.extend_from_slice(body);
        out.extend_from_slice(&[0; TAG_LEN]);
        let (h, hlen) = Header::parse(&out)?;
        if hlen != header.len() {
            return Err(Error::SyncMalformed("header length field disagrees with header"));
        }
        self.check(&h)?;
        let (aad, rest) = out.split_at_mut(hlen);
        let (pt, tag_out) = rest.split_at_mut(body.len());
        let tag = self
            .cipher
            .seal_in_place(&nonce(h.packet_number), aad, pt)
            .map_err(|_| Error::SyncKey("AEAD seal failed"))?;
        tag_out.copy_from_slice(&tag);
        Ok(out)
    }

    /// Authenticates `datagram` (whose header was parsed as `header`, of
    /// `header_len` octets) and decrypts its body in place; returns the
    /// plaintext body, a sub-slice of `datagram`.
    pub fn open<'a>(
        &self,
        header: &Header,
        header_len: usize,
        datagram: &'a mut [u8],
    ) -> Result<&'a [u8], Error> {
        self.check(header)?;
        if header_len < HEADER_LEN || datagram.len() < header_len + TAG_LEN {
            return Err(Error::SyncMalformed("datagram shorter than its header and tag"));
        }
        let (aad, rest) = datagram.split_at_mut(header_len);
        let body_len = rest.len() - TAG_LEN;
        let (ct, tag) = rest.split_at_mut(body_len);
        let mut t = [0; TAG_LEN];
        t.copy_from_slice(tag);
        self.cipher.open_in_place(&nonce(header.packet_number), aad, ct, &t).map_err(|_| Error::SyncAuth)?;
        Ok(ct)
    }
}
