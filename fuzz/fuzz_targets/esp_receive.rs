//! Arbitrary bytes as a whole outer IP packet into `Sad::receive`, and as an
//! ESP packet (SPI rewritten to an installed one) into `Sad::decapsulate`,
//! against AEAD and CBC SAs in tunnel and transport mode, ESN on and off.
//!
//! Besides "never panics": results lie within the buffer, a packet accepted
//! once is a replay the second time, and the result does not depend on where
//! the packet sits in the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_esp::{Decapsulated, Error, Received};
use tandem_fuzz::{RECEIVE_FIXTURE, RECEIVE_SAS, receive_sad};

/// Octets of junk around the packet in the offset run.
const BEFORE: usize = 13;
const AFTER: usize = 7;

fuzz_target!(|data: &[u8]| {
    receive(data);
    decapsulate(data);
});

fn receive(data: &[u8]) {
    let mut sad = receive_sad();
    let mut buf = data.to_vec();
    let r = sad.receive(&mut buf, 0..data.len());
    match &r {
        Ok(Received::Plaintext(d)) => check_range(d, buf.len()),
        Ok(Received::Ike(range)) => assert!(range.start <= range.end && range.end <= buf.len(), "{range:?}"),
        Ok(Received::NatKeepalive) | Err(_) => {}
    }
    if let Ok(Received::Plaintext(_)) = &r {
        let mut again = data.to_vec();
        assert_eq!(sad.receive(&mut again, 0..data.len()), Err(Error::Replay), "accepted twice");
    }

    // The same packet inside a larger buffer gives the same result, shifted.
    let mut sad = receive_sad();
    let mut big = vec![0xa5; BEFORE];
    big.extend_from_slice(data);
    big.resize(big.len() + AFTER, 0x5a);
    let shifted = sad.receive(&mut big, BEFORE..BEFORE + data.len());
    let unshifted = shifted.map(|x| match x {
        Received::Plaintext(mut d) => {
            assert!(d.range.start >= BEFORE && d.range.end <= BEFORE + data.len(), "{d:?}");
            d.range = d.range.start - BEFORE..d.range.end - BEFORE;
            Received::Plaintext(d)
        }
        Received::Ike(range) => Received::Ike(range.start - BEFORE..range.end - BEFORE),
        Received::NatKeepalive => Received::NatKeepalive,
    });
    assert_eq!(unshifted, r, "result depends on the packet's offset");
    if let Ok(Received::Plaintext(d)) = &r {
        assert_eq!(&big[d.range.start + BEFORE..d.range.end + BEFORE], &buf[d.range.clone()]);
    }
}

fn decapsulate(data: &[u8]) {
    let Some(spi) = data.get(..4) else { return };
    let spi = u32::from_be_bytes([spi[0], spi[1], spi[2], spi[3]]);
    let sa = &RECEIVE_FIXTURE[spi as usize % RECEIVE_SAS];
    let mut buf = data.to_vec();
    buf[..4].copy_from_slice(&sa.spi.to_be_bytes());
    let mut sad = receive_sad();
    if let Ok(d) = sad.decapsulate(&mut buf, 0..data.len()) {
        check_range(&d, buf.len());
        assert_eq!(d.spi, sa.spi);
        let mut again = data.to_vec();
        again[..4].copy_from_slice(&sa.spi.to_be_bytes());
        assert_eq!(sad.decapsulate(&mut again, 0..data.len()), Err(Error::Replay), "accepted twice");
    }
}

fn check_range(d: &Decapsulated, len: usize) {
    assert!(d.range.start <= d.range.end && d.range.end <= len, "{d:?} outside a {len}-octet buffer");
}
