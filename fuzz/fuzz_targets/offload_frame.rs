//! A received frame with its offload header (`virtio_net_hdr`), as a
//! packet socket hands it over: classified, its checksum finished, a
//! super-packet cut into segments (into buffers and in place), counted
//! from a trimmed head (and the head made a packet), and the segments coalesced again, and joined into
//! UDP GSO super-packets as the external port sends them; never a panic,
//! every segment lies within what was received, and a joined message
//! holds every octet of payload of its frames.
#![no_main]

#[allow(dead_code, unreachable_pub, missing_docs, unused_imports)]
#[path = "../../src/gateway/frames.rs"]
mod frames;

#[allow(dead_code, unreachable_pub, missing_docs, unused_imports)]
#[path = "../../src/gateway/udp_gso.rs"]
mod udp_gso;

use frames::{Coalescer, Rx, VNET_HDR_LEN, VnetHdr, finish_checksum, head_packet};
use libfuzzer_sys::fuzz_target;

/// Room before a frame for its segments' headers, as the receive buffers
/// have.
const BEFORE: usize = 128;

fuzz_target!(|data: &[u8]| {
    // [virtio_net_hdr (10), extra length of the whole (2), frame...]
    let Some((h, rest)) = data.split_first_chunk::<VNET_HDR_LEN>() else { return };
    let Some(([a, b], frame)) = rest.split_first_chunk::<2>() else { return };
    let hdr = VnetHdr::parse(h);
    // As from a trimmed frame: its head and the length it came with.
    let whole = frame.len() + usize::from(u16::from_be_bytes([*a, *b]));
    assert!(hdr.packets(&frame[..frame.len().min(128)], whole) >= 1);
    // A trimmed head made a packet of its own says its own length.
    let mut ip = [0u8; 134 - 14];
    if let Some(p) = frame.get(14..frame.len().min(134)).and_then(|h| head_packet(h, &mut ip)) {
        let len = match p[0] >> 4 {
            4 => usize::from(u16::from_be_bytes([p[2], p[3]])),
            _ => 40 + usize::from(u16::from_be_bytes([p[4], p[5]])),
        };
        assert_eq!(len, p.len());
    }
    let mut merge = Coalescer::new(8, true);
    match hdr.classify(frame) {
        Rx::Frame(partial) => {
            let mut f = frame.to_vec();
            if let (Some(p), Some(ip)) = (partial, f.get_mut(14..)) {
                finish_checksum(ip, p);
            }
            let _ = merge.push(&f);
            joined(&[&f, &f, frame]);
        }
        Rx::Segment(s) => {
            let n = s.count().min(64);
            let mut out = vec![0u8; s.max_frame()];
            let mut cut = Vec::new();
            for i in 0..n {
                let len = s.write(frame, i, &mut out);
                assert!(len <= out.len());
                cut.push(out[..len].to_vec());
                if len > 0 && !merge.push(&out[..len]) {
                    let _ = merge.frames();
                    merge.clear();
                }
            }
            // The segments (and the frame itself, and a frame cut in two)
            // as frames to send.
            let mut to_send: Vec<&[u8]> = cut.iter().map(Vec::as_slice).collect();
            to_send.push(frame);
            to_send.push(&frame[..frame.len() / 2]);
            joined(&to_send);
            let mut buf = vec![0u8; BEFORE + frame.len()];
            buf[BEFORE..].copy_from_slice(frame);
            for i in 0..n {
                if let Some(r) = s.in_place(&mut buf, BEFORE, i) {
                    assert!(r.end <= buf.len());
                    let seg = &mut buf[r];
                    if let Some(ip) = seg.get_mut(14..) {
                        finish_checksum(ip, s.partial());
                    }
                }
            }
        }
        Rx::Unsupported => joined(&[frame, frame]),
    }
    let _ = merge.frames();
});

/// Joins `frames` as the external port would, and checks that the runs
/// cover them in order and that a joined message keeps every payload.
fn joined(frames: &[&[u8]]) {
    let runs = udp_gso::runs(frames, true);
    let mut next = 0;
    for r in &runs {
        assert_eq!(r.first, next);
        assert!(r.count >= 1 && r.count <= udp_gso::MAX_SEGMENTS);
        next += r.count;
        let len: usize = r.pieces(frames).map(<[u8]>::len).sum();
        let whole: usize = frames[r.first..r.first + r.count].iter().map(|f| f.len()).sum();
        assert!(len <= whole);
        if r.count == 1 {
            assert_eq!(len, whole);
        }
    }
    assert_eq!(next, frames.len());
}
