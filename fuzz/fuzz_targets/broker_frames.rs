//! The supervisor's side of the broker on arbitrary bytes from a hostile child: frames read in
//! short reads, each header parsed as `runner/session.rs` does (READY → Ready, LOADED →
//! Signature, RESULT → TensorsHeader + validate + payload streamed into a Preview, ERROR →
//! ErrorMsg, EVENT → Event, bounded). Asserts no panic, that every accepted frame respects the
//! limits, and that heap use is bounded by the header limit, never by a length field.
//!
//! Input: byte 0 picks the stage to start at (so RESULT is reachable without two valid frames
//! first), byte 1 seeds the short-read sizes; the rest is the pipe's contents.
#![no_main]
use std::io::Read;

use sandload_fuzz::broker::frame::{read_frame, FrameError, Kind};
use sandload_fuzz::broker::messages::{ErrorMsg, Event, Ready, Signature};
use sandload_fuzz::broker::{Limits, TensorsHeader};
use sandload_fuzz::support::{self, Chunked};
use sandload_fuzz::tensors::output::{Preview, Sink};

const LIMITS: Limits = Limits {
    max_header: 64 << 10,
    max_payload: 1 << 20,
    max_rank: 32,
    max_tensors: 1024,
    max_name: 256,
    max_events: 8,
};
const PREVIEW: usize = 16;

#[derive(Clone, Copy)]
enum Stage {
    Ready,
    Loaded,
    Result,
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    support::reset();
    converse(data);
    // A header may cost a few times its bytes once parsed (a `[0,0,…]` shape is 2 text bytes
    // per 8-byte u64, and Vec doubling); nothing may scale with a declared length.
    let h = LIMITS.max_header as usize;
    support::check("broker", data.len(), 16 * h + (64 << 10), 8 * h);
});

fn converse(data: &[u8]) {
    let mut stage = match data[0] % 3 {
        0 => Stage::Ready,
        1 => Stage::Loaded,
        _ => Stage::Result,
    };
    let mut r = Chunked::new(&data[2..], data[1], 1 + (data[1] >> 4) as usize * 3);
    let mut events = 0usize;
    loop {
        let expected: &[Kind] = match stage {
            Stage::Ready => &[Kind::Ready, Kind::Error],
            Stage::Loaded => &[Kind::Loaded, Kind::Error],
            Stage::Result => &[Kind::Result, Kind::Error],
        };
        let before = r.remaining();
        let f = match read_frame(&mut r, &LIMITS, expected) {
            Ok(f) => f,
            Err(FrameError::Closed) => {
                assert_eq!(before, 0, "Closed with {before} bytes unread");
                return;
            }
            Err(_) => return,
        };
        // What decode_preamble promises the session.
        assert!(f.kind == Kind::Event || expected.contains(&f.kind), "{:?} accepted while expecting {expected:?}", f.kind);
        assert!(f.header.len() <= LIMITS.max_header as usize);
        assert!(f.payload_len <= LIMITS.max_payload);
        assert!(f.payload_len == 0 || f.kind == Kind::Result, "{:?} frame with a payload", f.kind);
        match (f.kind, stage) {
            (Kind::Event, _) => {
                if events >= LIMITS.max_events {
                    continue;
                }
                match f.parse::<Event>() {
                    Ok(_) => events += 1,
                    Err(e) => return assert!(matches!(e, FrameError::BadHeader { kind: Kind::Event, .. })),
                }
            }
            (Kind::Error, _) => {
                let _ = f.parse::<ErrorMsg>();
                return;
            }
            (Kind::Ready, Stage::Ready) => match f.parse::<Ready>() {
                Ok(_) => stage = Stage::Loaded,
                Err(_) => return,
            },
            (Kind::Loaded, Stage::Loaded) => match f.parse::<Signature>() {
                Ok(_) => stage = Stage::Result,
                Err(_) => return,
            },
            (Kind::Result, Stage::Result) => return receive_result(&f, &mut r),
            (k, _) => panic!("{k:?} got past the expected-kind check"),
        }
    }
}

/// As `session::receive_result`, with the Preview as the only sink and a smaller buffer.
fn receive_result(f: &sandload_fuzz::broker::frame::RawFrame, r: &mut Chunked) {
    let Ok(header) = f.parse::<TensorsHeader>() else { return };
    let Ok(sizes) = header.validate(Kind::Result, f.payload_len, &LIMITS) else { return };
    assert_eq!(sizes.len(), header.tensors.len());
    assert!(header.tensors.len() <= LIMITS.max_tensors);
    assert_eq!(sizes.iter().sum::<u64>(), f.payload_len);
    for (t, size) in header.tensors.iter().zip(&sizes) {
        assert!(t.shape.len() <= LIMITS.max_rank && t.name.len() <= LIMITS.max_name);
        assert_eq!(t.byte_len(), Some(*size));
    }
    let mut preview = Preview::new(PREVIEW);
    let mut buf = [0u8; 4096];
    for (meta, size) in header.tensors.iter().zip(sizes) {
        preview.begin(meta).expect("preview never fails");
        let mut left = size;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = r.read(&mut buf[..want]).expect("in-memory read");
            if n == 0 {
                return; // ChildGone("in the middle of a result")
            }
            preview.write(&buf[..n]).expect("preview never fails");
            left -= n as u64;
        }
        let (m, vals) = preview.tensors.last().expect("begun");
        let elements = m.elements().expect("validated");
        assert_eq!(vals.len() as u64, elements.min(PREVIEW as u64), "preview of {:?}", m.shape);
    }
}
