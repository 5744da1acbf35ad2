//! CREATE_CHILD_SA (RFC 7296 section 1.3): new and rekeyed CHILD_SAs, with
//! optional PFS, and IKE SA rekeying (section 2.18) as responder; CHILD_SA
//! rekeying as initiator, followed by the Delete of the old pair.
//!
//! Simultaneous rekeys (sections 2.8.1 and 2.8.2) are not resolved yet: a
//! request that crosses ours is answered as if ours did not exist.

use super::{
    ChildOffer, ChildRecord, Context, IkeSa, NONCE_LEN, Role, State, accepted, derive_from_seed,
    inner_payloads, offers, ranges, sa_payload, ts_payload,
};
use crate::Error;
use crate::config::IkeConfig;
use crate::endpoint::{Allocator, Output};
use crate::event::{Event, IkeSaId};
use crate::keys::rekey_skeyseed;
use crate::narrow::covers;
use crate::select::select;
use crate::wire::{
    Delete, ExchangeType, Ke, Message, Nonce, Notify, NotifyType, Payload, PayloadType, ProtocolId, Sa,
    TrafficSelector, Ts,
};
use rand_core::CryptoRng;
use std::time::Instant;
use tandem_crypto::kex::KeyExchange;
use tandem_crypto::proposal::ProposalKind;

/// The payloads of an IKE_SA_INIT or CREATE_CHILD_SA message that matter.
#[derive(Default)]
pub(super) struct Parts<'p, 'a> {
    pub(super) sa: Option<&'p Sa>,
    pub(super) nonce: Option<&'a [u8]>,
    pub(super) ke: Option<&'p Ke<'a>>,
    pub(super) tsi: Option<&'p Ts>,
    pub(super) tsr: Option<&'p Ts>,
    pub(super) rekey: Option<&'p Notify<'a>>,
    pub(super) error: Option<NotifyType>,
}

/// Picks the payloads that matter out of a message.
pub(super) fn parts<'p, 'a>(payloads: &'p [Payload<'a>]) -> Parts<'p, 'a> {
    let mut p = Parts::default();
    for payload in payloads {
        match payload {
            Payload::Sa(s) => p.sa = Some(s),
            Payload::Nonce(n) => p.nonce = Some(n.data),
            Payload::Ke(k) => p.ke = Some(k),
            Payload::TsI(t) => p.tsi = Some(t),
            Payload::TsR(t) => p.tsr = Some(t),
            Payload::Notify(n) if n.ty == NotifyType::REKEY_SA => p.rekey = Some(n),
            Payload::Notify(n) if n.ty.is_error() => p.error = Some(n.ty),
            _ => {}
        }
    }
    p
}

impl IkeSa {
    /// Responder side of CREATE_CHILD_SA.
    pub(super) fn respond_create_child<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let plain = self.decrypt(msg)?;
        self.heard(now);
        let first = msg.sk().map_or(PayloadType::NONE, |s| s.next_payload);
        let payloads = inner_payloads(msg, first, &plain)?;
        let p = parts(&payloads);
        let mid = msg.header.message_id;
        let (Some(sa_p), Some(ni)) = (p.sa, p.nonce) else {
            return self.refuse(rng, mid, NotifyType::INVALID_SYNTAX, &[], out);
        };
        if sa_p.proposals.iter().any(|q| q.protocol == ProtocolId::IKE) {
            return self.respond_rekey_ike(config, rng, now, alloc, sa_p, ni, p.ke, mid, out);
        }
        // Which CHILD_SA a rekey replaces: the REKEY_SA SPI is the
        // requester's inbound SPI, our outbound one.
        let old = match p.rekey {
            Some(n) => {
                let spi = <[u8; 4]>::try_from(n.spi).ok().map(u32::from_be_bytes);
                match spi.and_then(|s| self.children.iter().find(|c| c.outbound == s)) {
                    Some(c) => Some((c.inbound, c.outbound)),
                    None => return self.refuse(rng, mid, NotifyType::CHILD_SA_NOT_FOUND, &[], out),
                }
            }
            None => None,
        };
        let (Some(tsi), Some(tsr)) = (p.tsi, p.tsr) else {
            return self.refuse(rng, mid, NotifyType::INVALID_SYNTAX, &[], out);
        };
        let (offer, local_ts, remote_ts) =
            match self.negotiate_child(config, rng, alloc, sa_p, tsi, tsr, true) {
                Ok(c) => c,
                Err(ty) => return self.refuse(rng, mid, ty, &[], out),
            };
        // PFS: the chosen group's KE must be there.
        let ke = match offer.selected.dh {
            Some(group) => match p.ke.filter(|k| k.group == group.iana_id()) {
                Some(k) => Some((KeyExchange::generate(group, rng), k.data)),
                None => {
                    return self.refuse(
                        rng,
                        mid,
                        NotifyType::INVALID_KE_PAYLOAD,
                        &group.iana_id().to_be_bytes(),
                        out,
                    );
                }
            },
            None => None,
        };
        let g_ir = match &ke {
            Some((kex, peer)) => Some(kex.shared_secret(peer)?),
            None => None,
        };
        let mut nr = vec![0u8; NONCE_LEN];
        rng.fill_bytes(&mut nr);
        let (spi, number, proposal) = (offer.spi, offer.selected.number, offer.selected.to_proposal());
        let child = self.new_child(
            config,
            now,
            offer,
            local_ts.clone(),
            remote_ts.clone(),
            (ni, &nr),
            g_ir.as_ref().map(|g| g.expose()),
            false,
            out,
        )?;

        let mut reply = vec![
            Payload::Sa(sa_payload(&[proposal], ProtocolId::ESP, &spi.to_be_bytes())?.numbered(number)),
            Payload::Nonce(Nonce { data: &nr }),
        ];
        if let Some((kex, _)) = &ke {
            reply.push(Payload::Ke(Ke { group: kex.group().iana_id(), data: kex.public_value() }));
        }
        reply.push(Payload::TsI(ts_payload(&remote_ts)));
        reply.push(Payload::TsR(ts_payload(&local_ts)));
        let bytes = self.encrypt(rng, ExchangeType::CREATE_CHILD_SA, true, mid, &reply)?;
        self.answer(mid, bytes, out);
        out.event(match old {
            Some((old_inbound_spi, old_outbound_spi)) => {
                Event::ChildSaRekeyed { sa: self.id, old_inbound_spi, old_outbound_spi, new: child }
            }
            None => Event::ChildSaEstablished(child),
        });
        Ok(())
    }

    /// Responder side of an IKE SA rekey: a new IKE SA keyed from this
    /// one's SK_d takes over the CHILD_SAs; the peer then deletes this one.
    #[allow(clippy::too_many_arguments)] // the request's parts
    fn respond_rekey_ike<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        sa_p: &Sa,
        ni: &[u8],
        ke_p: Option<&Ke<'_>>,
        mid: u32,
        out: &mut Output,
    ) -> Result<(), Error> {
        let Some(chosen) = select(ProposalKind::Ike, &config.proposals, &offers(sa_p, ProtocolId::IKE))
        else {
            return self.refuse(rng, mid, NotifyType::NO_PROPOSAL_CHOSEN, &[], out);
        };
        let (Some(prf), Some(group)) = (chosen.prf, chosen.dh) else {
            return Err(Error::InvalidSuite("IKE selection without PRF or group"));
        };
        let Some(ke_p) = ke_p.filter(|k| k.group == group.iana_id()) else {
            return self.refuse(
                rng,
                mid,
                NotifyType::INVALID_KE_PAYLOAD,
                &group.iana_id().to_be_bytes(),
                out,
            );
        };
        let peer_spi = sa_p
            .proposals
            .iter()
            .find(|q| q.number == chosen.number && q.protocol == ProtocolId::IKE)
            .and_then(|q| <[u8; 8]>::try_from(q.spi.as_slice()).ok())
            .map(u64::from_be_bytes)
            .filter(|s| *s != 0);
        let Some(peer_spi) = peer_spi else {
            return self.refuse(rng, mid, NotifyType::INVALID_SYNTAX, &[], out);
        };
        let kex = KeyExchange::generate(group, rng);
        let g_ir = kex.shared_secret(ke_p.data)?;
        let mut nr = vec![0u8; NONCE_LEN];
        rng.fill_bytes(&mut nr);
        let old = self.crypto.as_ref().ok_or(Error::InvalidSyntax("rekey before keys"))?;
        // Section 2.18: the old SA's PRF and SK_d make the new SKEYSEED.
        let seed = rekey_skeyseed(old.prf, old.keys.sk_d().expose(), g_ir.expose(), ni, &nr);
        let new_spi = alloc.ike_spi(rng);
        // Whoever starts the rekey is the new SA's original initiator.
        let crypto = derive_from_seed(prf, &chosen, &seed, ni, &nr, (peer_spi, new_spi), Role::Responder)?;

        let reply = [
            Payload::Sa(
                sa_payload(&[chosen.to_proposal()], ProtocolId::IKE, &new_spi.to_be_bytes())?
                    .numbered(chosen.number),
            ),
            Payload::Nonce(Nonce { data: &nr }),
            Payload::Ke(Ke { group: group.iana_id(), data: kex.public_value() }),
        ];
        let bytes = self.encrypt(rng, ExchangeType::CREATE_CHILD_SA, true, mid, &reply)?;
        self.answer(mid, bytes, out);
        let mut new = self.successor(new_spi, Role::Responder, (peer_spi, new_spi), crypto, now);
        new.establish(config, now, out);
        out.event(Event::IkeSaRekeyed { old: self.id, new: new.id });
        out.spawn(new);
        Ok(())
    }

    /// Starts rekeying the CHILD_SA whose inbound SPI is `inbound`.
    pub(crate) fn rekey_child<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        inbound: u32,
        out: &mut Output,
    ) -> Result<(), Error> {
        if self.pending.is_some() {
            return Err(Error::Busy);
        }
        if !matches!(self.state, State::Established) {
            return Err(Error::InvalidSyntax("rekey before the IKE SA is established"));
        }
        let child =
            self.children.iter().find(|c| c.inbound == inbound).cloned().ok_or(Error::UnknownChild)?;
        let spi = alloc.child_spi(rng);
        let mut ni = vec![0u8; NONCE_LEN];
        rng.fill_bytes(&mut ni);
        let group = config.child.proposals.iter().find_map(|p| p.dh.first().copied());
        let ke = group.map(|g| KeyExchange::generate(g, rng));
        let old_spi = inbound.to_be_bytes();
        let mut payloads = vec![
            Payload::Notify(Notify {
                protocol: ProtocolId::ESP,
                spi: &old_spi,
                ty: NotifyType::REKEY_SA,
                data: &[],
            }),
            Payload::Sa(sa_payload(&config.child.proposals, ProtocolId::ESP, &spi.to_be_bytes())?),
            Payload::Nonce(Nonce { data: &ni }),
        ];
        if let Some(k) = &ke {
            payloads.push(Payload::Ke(Ke { group: k.group().iana_id(), data: k.public_value() }));
        }
        payloads.push(Payload::TsI(ts_payload(&child.local_ts)));
        payloads.push(Payload::TsR(ts_payload(&child.remote_ts)));
        let bytes =
            self.encrypt(rng, ExchangeType::CREATE_CHILD_SA, false, self.next_message_id, &payloads)?;
        let context = Context::RekeyChild { old: inbound, spi, ni, ke: ke.map(Box::new) };
        self.send_request(config, now, bytes, context, out);
        Ok(())
    }

    /// Initiator side: the answer to our CHILD_SA rekey. The new pair is
    /// reported, then the old one deleted with an INFORMATIONAL exchange.
    pub(super) fn create_child_response<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let plain = self.decrypt(msg)?;
        self.heard(now);
        let first = msg.sk().map_or(PayloadType::NONE, |s| s.next_payload);
        let payloads = inner_payloads(msg, first, &plain)?;
        let p = parts(&payloads);
        self.next_message_id = self.next_message_id.wrapping_add(1);
        let (old, spi, ni, ke) = match self.pending.take().map(|q| q.context) {
            Some(Context::RekeyChild { old, spi, ni, ke }) => (old, spi, ni, ke),
            Some(Context::RekeyIke { spi, ni, ke }) => {
                return self.rekey_ike_response(config, rng, now, spi, &ni, &ke, &p, out);
            }
            _ => return Err(Error::InvalidSyntax("CREATE_CHILD_SA response without our request")),
        };
        let Some(old_child) = self.children.iter().find(|c| c.inbound == old).cloned() else {
            return Err(Error::UnknownChild);
        };
        let refused = |e: Error, out: &mut Output| out.event(Event::ChildSaFailed { sa: self.id, error: e });
        let (Some(sa_p), Some(nr), Some(tsi), Some(tsr)) = (p.sa, p.nonce, p.tsi, p.tsr) else {
            let e = p
                .error
                .map_or(Error::InvalidSyntax("incomplete CREATE_CHILD_SA response"), |t| Error::Refused(t.0));
            refused(e, out);
            return Ok(());
        };
        let selected = accepted(ProposalKind::Esp, &config.child.proposals, sa_p, ProtocolId::ESP)?;
        let g_ir = match (&ke, selected.dh, p.ke) {
            (Some(k), Some(g), Some(kp)) if k.group() == g && kp.group == g.iana_id() => {
                Some(k.shared_secret(kp.data)?)
            }
            (_, None, _) => None,
            _ => return Err(Error::InvalidSyntax("CREATE_CHILD_SA response with a mismatched KE")),
        };
        let peer_spi = sa_p
            .proposals
            .first()
            .and_then(|q| <[u8; 4]>::try_from(q.spi.as_slice()).ok())
            .map(u32::from_be_bytes)
            .ok_or(Error::InvalidSyntax("CHILD_SA SPI is not 4 octets"))?;
        let (local_ts, remote_ts) = (ranges(tsi), ranges(tsr));
        let within = |got: &[TrafficSelector], ours: &[TrafficSelector]| {
            !got.is_empty() && got.iter().all(|g| ours.iter().any(|o| covers(o, g)))
        };
        if !within(&local_ts, &old_child.local_ts) || !within(&remote_ts, &old_child.remote_ts) {
            return Err(Error::InvalidSyntax("narrowed selectors outside the proposed ones"));
        }
        let offer = ChildOffer { selected, spi, peer_spi };
        let new = self.new_child(
            config,
            now,
            offer,
            local_ts,
            remote_ts,
            (&ni, nr),
            g_ir.as_ref().map(|g| g.expose()),
            true,
            out,
        )?;
        out.event(Event::ChildSaRekeyed {
            sa: self.id,
            old_inbound_spi: old_child.inbound,
            old_outbound_spi: old_child.outbound,
            new,
        });
        // The rekey's initiator deletes the old pair (section 1.3.3).
        let d = [Payload::Delete(Delete::child(ProtocolId::ESP, [old]))];
        let bytes = self.encrypt(rng, ExchangeType::INFORMATIONAL, false, self.next_message_id, &d)?;
        self.send_request(config, now, bytes, Context::DeleteChild { old }, out);
        Ok(())
    }

    /// Starts rekeying this IKE SA (section 2.18).
    pub(crate) fn rekey_ike<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        if self.pending.is_some() {
            return Err(Error::Busy);
        }
        if !matches!(self.state, State::Established) {
            return Err(Error::InvalidSyntax("rekey before the IKE SA is established"));
        }
        let group = super::first_group(&config.proposals)
            .ok_or(Error::InvalidSuite("IKE proposal without a group"))?;
        let spi = alloc.ike_spi(rng);
        let mut ni = vec![0u8; NONCE_LEN];
        rng.fill_bytes(&mut ni);
        let ke = KeyExchange::generate(group, rng);
        let payloads = [
            Payload::Sa(sa_payload(&config.proposals, ProtocolId::IKE, &spi.to_be_bytes())?),
            Payload::Nonce(Nonce { data: &ni }),
            Payload::Ke(Ke { group: group.iana_id(), data: ke.public_value() }),
        ];
        let bytes =
            self.encrypt(rng, ExchangeType::CREATE_CHILD_SA, false, self.next_message_id, &payloads)?;
        self.send_request(config, now, bytes, Context::RekeyIke { spi, ni, ke: Box::new(ke) }, out);
        Ok(())
    }

    /// Initiator side of an IKE SA rekey: adopts the new SA, moves the
    /// CHILD_SAs to it, and deletes this one.
    #[allow(clippy::too_many_arguments)] // the request's state and the answer
    fn rekey_ike_response<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        spi: u64,
        ni: &[u8],
        ke: &KeyExchange,
        p: &Parts<'_, '_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let (Some(sa_p), Some(nr), Some(ke_p)) = (p.sa, p.nonce, p.ke) else {
            let e = p
                .error
                .map_or(Error::InvalidSyntax("incomplete IKE rekey response"), |t| Error::Refused(t.0));
            out.event(Event::ChildSaFailed { sa: self.id, error: e });
            return Ok(());
        };
        let chosen = accepted(ProposalKind::Ike, &config.proposals, sa_p, ProtocolId::IKE)?;
        let (Some(prf), Some(group)) = (chosen.prf, chosen.dh) else {
            return Err(Error::InvalidSuite("IKE selection without PRF or group"));
        };
        if group != ke.group() || ke_p.group != group.iana_id() {
            return Err(Error::InvalidSyntax("IKE rekey response with a mismatched KE"));
        }
        let peer_spi = sa_p
            .proposals
            .first()
            .and_then(|q| <[u8; 8]>::try_from(q.spi.as_slice()).ok())
            .map(u64::from_be_bytes)
            .filter(|s| *s != 0)
            .ok_or(Error::InvalidSyntax("IKE SPI is not 8 non-zero octets"))?;
        let g_ir = ke.shared_secret(ke_p.data)?;
        let old = self.crypto.as_ref().ok_or(Error::InvalidSyntax("rekey before keys"))?;
        let seed = rekey_skeyseed(old.prf, old.keys.sk_d().expose(), g_ir.expose(), ni, nr);
        let crypto = derive_from_seed(prf, &chosen, &seed, ni, nr, (spi, peer_spi), Role::Initiator)?;
        let mut new = self.successor(spi, Role::Initiator, (spi, peer_spi), crypto, now);
        new.establish(config, now, out);
        out.event(Event::IkeSaRekeyed { old: self.id, new: new.id });
        out.spawn(new);
        // The old SA goes: its CHILD_SAs moved to the new one.
        self.delete(config, rng, now, out)
    }

    /// The IKE SA that replaces this one after a rekey: new SPIs and keys,
    /// fresh message IDs, this one's path and CHILD_SAs (moved over).
    fn successor(
        &mut self,
        id: u64,
        role: Role,
        (spi_i, spi_r): (u64, u64),
        crypto: super::SaCrypto,
        now: Instant,
    ) -> IkeSa {
        IkeSa {
            id: IkeSaId(id),
            role,
            state: State::Established,
            spi_i,
            spi_r,
            local: self.local,
            remote: self.remote,
            ni: Vec::new(),
            nr: Vec::new(),
            msg1: Vec::new(),
            msg2: Vec::new(),
            peer_hashes: Vec::new(),
            virtual_ips: std::mem::take(&mut self.virtual_ips),
            crypto: Some(crypto),
            next_message_id: 0,
            pending: None,
            expected_request: 0,
            last_request: Vec::new(),
            last_response: None,
            children: std::mem::take(&mut self.children),
            last_heard: now,
            deleting: false,
            nat: self.nat,
            arrived_on: self.arrived_on,
            init_remote: self.remote,
            rekey_at: None,
            expire_at: None,
        }
    }

    /// Finishes the Delete of an old CHILD_SA pair after its rekey.
    pub(super) fn child_deleted(&mut self, old: u32, out: &mut Output) {
        if let Some(i) = self.children.iter().position(|c| c.inbound == old) {
            let ChildRecord { inbound, outbound, .. } = self.children.remove(i);
            out.event(Event::ChildSaDeleted { sa: self.id, inbound_spi: inbound, outbound_spi: outbound });
        }
    }

    /// Answers a request with an error Notify.
    fn refuse<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        mid: u32,
        ty: NotifyType,
        data: &[u8],
        out: &mut Output,
    ) -> Result<(), Error> {
        let n = [Payload::Notify(Notify::new(ty, data))];
        let bytes = self.encrypt(rng, ExchangeType::CREATE_CHILD_SA, true, mid, &n)?;
        self.answer(mid, bytes, out);
        Ok(())
    }
}
