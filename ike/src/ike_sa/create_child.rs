//! CREATE_CHILD_SA (RFC 7296 section 1.3): new and rekeyed CHILD_SAs, with
//! optional PFS, and IKE SA rekeying (section 2.18) as responder; CHILD_SA
//! rekeying as initiator, followed by the Delete of the old pair.
//!
//! Collisions (sections 2.8.1, 2.8.2 and 2.25), with a window of one per
//! direction, so the peer's request is answered while ours is out:
//! - The peer rekeys the CHILD_SA (or the IKE SA) we are rekeying: we
//!   answer as usual and note its nonces. When our answer comes, the new
//!   SA of the exchange holding the lowest of the four nonces (octet by
//!   octet, a prefix being lower) is redundant. If it is ours, we delete
//!   it and the peer deletes the old SA; otherwise we delete the old SA
//!   and the peer deletes its new one. Both sides reach the same verdict
//!   from the same four nonces. A new IKE SA made by answering is held
//!   back until then, so the CHILD_SAs move only once, to the survivor.
//! - Our rekey finished before the peer's request came: the old SA is
//!   being deleted (TEMPORARY_FAILURE) or gone (CHILD_SA_NOT_FOUND). The
//!   peer, having answered ours, takes that as the end of its attempt.
//! - A request to rekey a CHILD_SA whose Delete we sent, or anything while
//!   we delete the IKE SA, gets TEMPORARY_FAILURE; an IKE SA rekey while
//!   we rekey or delete a CHILD_SA gets it too, as the CHILD_SAs must not
//!   move under an exchange that changes them. A TEMPORARY_FAILURE without
//!   a collision to explain it retries the rekey later, a few times.
//! - The peer deletes the IKE SA we are rekeying after answering its
//!   crossing rekey: its new IKE SA survives and takes the CHILD_SAs.

use super::{
    ChildOffer, ChildRecord, Context, CrossedChildRekey, CrossedIkeRekey, IkeSa, NONCE_LEN, Pending, Role,
    State, accepted, derive_from_seed, inner_payloads, offers, sa_payload, ts_payload,
};
use crate::Error;
use crate::config::IkeConfig;
use crate::endpoint::{Allocator, Output};
use crate::event::{Event, IkeSaId};
use crate::keys::rekey_skeyseed;
use crate::select::select;
use crate::wire::{
    Delete, ExchangeType, Ke, Message, Nonce, Notify, NotifyType, Payload, ProtocolId, Sa, Ts,
};
use core::time::Duration;
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
        let (first, plain) = self.open(msg)?;
        self.heard(now);
        let payloads = inner_payloads(msg, first, &plain)?;
        let p = parts(&payloads);
        let mid = msg.header.message_id;
        let (Some(sa_p), Some(ni)) = (p.sa, p.nonce) else {
            return self.refuse(rng, mid, NotifyType::INVALID_SYNTAX, &[], out);
        };
        // Nothing new on an IKE SA on its way out (section 2.25.2).
        if self.deleting {
            return self.refuse(rng, mid, NotifyType::TEMPORARY_FAILURE, &[], out);
        }
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
                    None => {
                        // Section 2.25: the Notify names the SPI asked for.
                        let n = Notify { spi: n.spi, ..Notify::new(NotifyType::CHILD_SA_NOT_FOUND, &[]) };
                        return self.refuse_with(rng, mid, Notify { protocol: ProtocolId::ESP, ..n }, out);
                    }
                }
            }
            None => None,
        };
        // Section 2.25.1: a pair whose Delete we sent is not rekeyed.
        if let Some((inbound, _)) = old {
            if matches!(&self.pending, Some(Pending { context: Context::DeleteChild { old }, .. }) if *old == inbound)
            {
                return self.refuse(rng, mid, NotifyType::TEMPORARY_FAILURE, &[], out);
            }
        }
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
        // It crosses our rekey of the same pair: keep its nonces to tell,
        // once ours is answered, which new pair is redundant (2.8.1).
        if let (
            Some((inbound, _)),
            Some(Pending { context: Context::RekeyChild { old: ours, crossed, .. }, .. }),
        ) = (old, &mut self.pending)
        {
            if ours.inbound == inbound {
                *crossed = Some(CrossedChildRekey { ni: ni.to_vec(), nr: nr.clone() });
            }
        }
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
        // The CHILD_SAs move to the new IKE SA: not while an exchange of
        // ours changes them (section 2.25).
        if matches!(
            &self.pending,
            Some(Pending { context: Context::RekeyChild { .. } | Context::DeleteChild { .. }, .. })
        ) {
            return self.refuse(rng, mid, NotifyType::TEMPORARY_FAILURE, &[], out);
        }
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
        let new_spi = alloc.rekeyed_ike_spi(rng, self.id);
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
        let new = self.successor(new_spi, Role::Responder, (peer_spi, new_spi), crypto, now);
        // It crosses our rekey of this IKE SA: hold the new SA until ours
        // is answered and tells which of the two survives (2.8.2).
        if let Some(Pending { context: Context::RekeyIke { crossed, .. }, .. }) = &mut self.pending {
            *crossed = Some(Box::new(CrossedIkeRekey { sa: new, ni: ni.to_vec(), nr }));
            return Ok(());
        }
        self.adopt(config, now, new, out);
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
        if self.pending.is_some() || self.deleting {
            return Err(Error::Busy);
        }
        if !matches!(self.state, State::Established) {
            return Err(Error::InvalidSyntax("rekey before the IKE SA is established"));
        }
        let child =
            self.children.iter().find(|c| c.inbound == inbound).cloned().ok_or(Error::UnknownChild)?;
        let spi = alloc.child_spi(rng, self.id);
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
        let context =
            Context::RekeyChild { old: Box::new(child), spi, ni, ke: ke.map(Box::new), crossed: None };
        self.send_request(config, now, bytes, context, out);
        Ok(())
    }

    /// Initiator side: the answer to our CHILD_SA rekey. The new pair is
    /// reported, then the old one deleted with an INFORMATIONAL exchange,
    /// or, after a collision, whichever pair the nonces say (2.8.1).
    pub(super) fn create_child_response<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let (first, plain) = self.open(msg)?;
        self.heard(now);
        let payloads = inner_payloads(msg, first, &plain)?;
        let p = parts(&payloads);
        self.next_message_id = self.next_message_id.wrapping_add(1);
        let (old, spi, ni, ke, crossed) = match self.pending.take().map(|q| q.context) {
            Some(Context::RekeyChild { old, spi, ni, ke, crossed }) => (old, spi, ni, ke, crossed),
            Some(Context::RekeyIke { spi, ni, ke, crossed }) => {
                return self.rekey_ike_response(config, rng, now, (spi, &ni, &ke), crossed, &p, out);
            }
            _ => return Err(Error::InvalidSyntax("CREATE_CHILD_SA response without our request")),
        };
        let (Some(sa_p), Some(nr), Some(tsi), Some(tsr)) = (p.sa, p.nonce, p.tsi, p.tsr) else {
            out.release_child_spi(spi);
            self.child_rekey_refused(config, now, old.inbound, crossed.is_some(), p.error, out);
            return Ok(());
        };
        let new = match self.rekeyed_child(
            config,
            now,
            &old,
            (spi, &ni, ke.as_deref()),
            (sa_p, nr, p.ke),
            (tsi, tsr),
            out,
        ) {
            Ok(new) => new,
            Err(e) => {
                out.release_child_spi(spi);
                return Err(e);
            }
        };
        self.temporary_failures = 0;
        // The peer may have deleted the old pair meanwhile (it won a
        // collision, or the pair expired): the new one then replaces none.
        let present = self.children.iter().any(|c| c.inbound == old.inbound);
        out.event(if present {
            Event::ChildSaRekeyed {
                sa: self.id,
                old_inbound_spi: old.inbound,
                old_outbound_spi: old.outbound,
                new,
            }
        } else {
            Event::ChildSaEstablished(new)
        });
        // Our new pair if the collision made it redundant; else the old
        // one, which the rekey's initiator deletes (section 1.3.3).
        let doomed = match &crossed {
            Some(c) if redundant((&ni, nr), (&c.ni, &c.nr)) => Some(spi),
            _ => present.then_some(old.inbound),
        };
        let Some(doomed) = doomed else { return Ok(()) };
        let d = [Payload::Delete(Delete::child(ProtocolId::ESP, [doomed]))];
        let bytes = self.encrypt(rng, ExchangeType::INFORMATIONAL, false, self.next_message_id, &d)?;
        self.send_request(config, now, bytes, Context::DeleteChild { old: doomed }, out);
        Ok(())
    }

    /// Checks the answer to our rekey of `old` and derives the new pair;
    /// `ours` is our new inbound SPI, nonce and key exchange.
    #[allow(clippy::too_many_arguments)] // the request's state and the answer's parts
    fn rekeyed_child(
        &mut self,
        config: &IkeConfig,
        now: Instant,
        old: &ChildRecord,
        (spi, ni, ke): (u32, &[u8], Option<&KeyExchange>),
        (sa_p, nr, ke_p): (&Sa, &[u8], Option<&Ke<'_>>),
        (tsi, tsr): (&Ts, &Ts),
        out: &mut Output,
    ) -> Result<crate::event::ChildSa, Error> {
        let selected = accepted(ProposalKind::Esp, &config.child.proposals, sa_p, ProtocolId::ESP)?;
        let g_ir = match (ke, selected.dh, ke_p) {
            (Some(k), Some(g), Some(kp)) if k.group() == g && kp.group == g.iana_id() => {
                Some(k.shared_secret(kp.data)?)
            }
            (_, None, _) => None,
            _ => return Err(Error::InvalidSyntax("CREATE_CHILD_SA response with a mismatched KE")),
        };
        let (peer_spi, local_ts, remote_ts) =
            super::answered_child(sa_p, (tsi, tsr), (&old.local_ts, &old.remote_ts))?;
        let offer = ChildOffer { selected, spi, peer_spi };
        self.new_child(
            config,
            now,
            offer,
            local_ts,
            remote_ts,
            (ni, nr),
            g_ir.as_ref().map(|g| g.expose()),
            true,
            out,
        )
    }

    /// The peer refused our rekey of the pair with inbound SPI `old`
    /// (`error`: its Notify, if any). `crossed`: we answered its rekey of
    /// the same pair, whose new pair then replaces the old one.
    fn child_rekey_refused(
        &mut self,
        config: &IkeConfig,
        now: Instant,
        old: u32,
        crossed: bool,
        error: Option<NotifyType>,
        out: &mut Output,
    ) {
        let at = self.children.iter().position(|c| c.inbound == old);
        match (error, at) {
            // The peer has no such pair (section 2.25): drop ours quietly.
            (Some(NotifyType::CHILD_SA_NOT_FOUND), Some(i)) => {
                let ChildRecord { inbound, outbound, .. } = self.children.remove(i);
                out.event(Event::ChildSaDeleted {
                    sa: self.id,
                    inbound_spi: inbound,
                    outbound_spi: outbound,
                });
            }
            // Deleted meanwhile, or replaced by the peer's rekey: nothing failed.
            (_, None) => {}
            (_, Some(_)) if crossed => {}
            (Some(NotifyType::TEMPORARY_FAILURE), Some(i))
                if self.temporary_failures < config.retransmit_tries =>
            {
                self.temporary_failures += 1;
                self.children[i].rekey_at = Some(now + retry_delay(config));
            }
            (e, Some(_)) => {
                let error = e.map_or(Error::InvalidSyntax("incomplete CREATE_CHILD_SA response"), |t| {
                    Error::Refused(t.0)
                });
                out.event(Event::ChildSaFailed { sa: self.id, error });
            }
        }
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
        if self.pending.is_some() || self.deleting {
            return Err(Error::Busy);
        }
        if !matches!(self.state, State::Established) {
            return Err(Error::InvalidSyntax("rekey before the IKE SA is established"));
        }
        let group = super::first_group(&config.proposals)
            .ok_or(Error::InvalidSuite("IKE proposal without a group"))?;
        let spi = alloc.rekeyed_ike_spi(rng, self.id);
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
        let context = Context::RekeyIke { spi, ni, ke: Box::new(ke), crossed: None };
        self.send_request(config, now, bytes, context, out);
        Ok(())
    }

    /// Initiator side of an IKE SA rekey: adopts the new SA, moves the
    /// CHILD_SAs to it, and deletes this one; after a collision (2.8.2),
    /// the surviving new SA takes the CHILD_SAs and the redundant one is
    /// deleted by whoever requested it.
    #[allow(clippy::too_many_arguments)] // the request's state and the answer
    fn rekey_ike_response<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        (spi, ni, ke): (u64, &[u8], &KeyExchange),
        crossed: Option<Box<CrossedIkeRekey>>,
        p: &Parts<'_, '_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let (Some(sa_p), Some(nr), Some(ke_p)) = (p.sa, p.nonce, p.ke) else {
            if let Some(c) = crossed {
                // Only the peer's rekey made an SA: it takes over, and the
                // peer deletes this one.
                self.adopt(config, now, c.sa, out);
                return Ok(());
            }
            if p.error == Some(NotifyType::TEMPORARY_FAILURE)
                && self.temporary_failures < config.retransmit_tries
            {
                self.temporary_failures += 1;
                self.rekey_at = Some(now + retry_delay(config));
                return Ok(());
            }
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
        let ours = self.successor(spi, Role::Initiator, (spi, peer_spi), crypto, now);
        self.temporary_failures = 0;
        let Some(crossed) = crossed else {
            self.adopt(config, now, ours, out);
            // The old SA goes: its CHILD_SAs moved to the new one.
            return self.delete(config, rng, now, out);
        };
        let CrossedIkeRekey { sa: theirs, ni: their_ni, nr: their_nr } = *crossed;
        let ours_redundant = redundant((ni, nr), (&their_ni, &their_nr));
        let (survivor, mut spare) = if ours_redundant { (theirs, ours) } else { (ours, theirs) };
        self.adopt(config, now, survivor, out);
        spare.quiet = true;
        spare.establish(config, now, out);
        spare.rekey_at = None;
        if ours_redundant {
            // We requested the redundant SA: we delete it, the peer
            // deletes the old one.
            spare.delete(config, rng, now, out)?;
            out.spawn(spare);
            return Ok(());
        }
        // The peer deletes its redundant SA (should its Delete never come,
        // the SA expires once the peer would have given up), and we the
        // old one.
        spare.expire_at = Some(now + give_up_time(config));
        out.spawn(spare);
        self.delete(config, rng, now, out)
    }

    /// The IKE SA that replaces this one after a rekey: new SPIs and keys,
    /// fresh message IDs, this one's path; no CHILD_SAs until [`Self::adopt`].
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
            virtual_ips: Vec::new(),
            assigned_ips: Vec::new(),
            crypto: Some(crypto),
            next_message_id: 0,
            pending: None,
            expected_request: 0,
            last_request: Vec::new(),
            last_response: None,
            // RFC 7383 section 2.3: a rekeyed IKE SA keeps fragmentation.
            fragment_size: self.fragment_size,
            reassembler: None,
            reassembled: None,
            children: Vec::new(),
            last_heard: now,
            deleting: false,
            nat: self.nat,
            arrived_on: self.arrived_on,
            init_remote: self.remote,
            rekey_at: None,
            expire_at: None,
            quiet: false,
            temporary_failures: 0,
        }
    }

    /// Hands this SA's CHILD_SAs and virtual addresses to `new`, its
    /// successor, which goes live; the rekey is reported.
    pub(super) fn adopt(&mut self, config: &IkeConfig, now: Instant, mut new: IkeSa, out: &mut Output) {
        new.children = std::mem::take(&mut self.children);
        new.virtual_ips = std::mem::take(&mut self.virtual_ips);
        new.assigned_ips = std::mem::take(&mut self.assigned_ips);
        self.rekey_at = None;
        new.establish(config, now, out);
        out.event(Event::IkeSaRekeyed { old: self.id, new: new.id });
        out.spawn(new);
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
        self.refuse_with(rng, mid, Notify::new(ty, data), out)
    }

    /// Answers a request with the Notify `n`.
    fn refuse_with<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        mid: u32,
        n: Notify<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let bytes = self.encrypt(rng, ExchangeType::CREATE_CHILD_SA, true, mid, &[Payload::Notify(n)])?;
        self.answer(mid, bytes, out);
        Ok(())
    }
}

/// Whether, of two crossing rekeys with nonces `a` and `b` (each the
/// request's and the response's), `a` made the redundant SA: the one with
/// the lowest of the four nonces (sections 2.8.1 and 2.8.2). Nonces compare
/// octet by octet, a prefix being lower; a tie on the lowest falls to the
/// other nonce of each exchange, so both peers always agree.
fn redundant(a: (&[u8], &[u8]), b: (&[u8], &[u8])) -> bool {
    fn key<'n>((x, y): (&'n [u8], &'n [u8])) -> (&'n [u8], &'n [u8]) {
        if x <= y { (x, y) } else { (y, x) }
    }
    key(a) < key(b)
}

/// How long to wait before retrying a rekey refused with TEMPORARY_FAILURE
/// (section 2.25: not at once, to let the peer finish what it was doing).
fn retry_delay(config: &IkeConfig) -> Duration {
    config.retransmit_timeout.saturating_mul(2)
}

/// How long a request of the peer's may go unanswered before it gives up:
/// the first timeout, doubled on each retransmission.
fn give_up_time(config: &IkeConfig) -> Duration {
    (0..=config.retransmit_tries).fold(Duration::ZERO, |total, n| {
        total
            .saturating_add(config.retransmit_timeout.saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX)))
    })
}

#[cfg(test)]
mod tests {
    use super::redundant;

    #[test]
    fn the_lowest_nonce_marks_the_redundant_exchange() {
        let (lo, mid, hi, top) = (&[1u8, 9][..], &[2u8][..], &[2u8, 0][..], &[3u8][..]);
        assert!(redundant((mid, lo), (hi, top)), "the lowest is in the first exchange");
        assert!(!redundant((hi, top), (lo, mid)));
        assert!(redundant((mid, hi), (top, hi)), "a prefix is lower");
        assert!(!redundant((top, hi), (mid, hi)));
        // A tie on the lowest goes to the second lowest, both ways round.
        assert!(redundant((lo, mid), (top, lo)) != redundant((top, lo), (lo, mid)));
    }
}
