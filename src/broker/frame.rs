//! Frame codec (layout in the module above). Reading is bounded; payload bytes are never read
//! here: the caller streams them to where they go.

use serde::{Deserialize, Serialize};
use std::io::Read;

use super::Limits;

pub const MAGIC: [u8; 4] = *b"SLB\x01";
pub const PREAMBLE: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum Kind {
    /// child → supervisor: imports done, phase-2 filter in place.
    Ready = 1,
    /// child → supervisor: the model loaded; header is the signature.
    Loaded = 2,
    /// supervisor → child: send the signature again.
    Describe = 3,
    Signature = 4,
    /// supervisor → child: tensors to predict on.
    Predict = 5,
    /// child → supervisor: output tensors.
    Result = 6,
    /// child → supervisor: the model raised (load or predict).
    Error = 7,
    /// child → supervisor: something the loader's audit hook saw (PEP 578).
    Event = 8,
    /// supervisor → child: exit now.
    Shutdown = 9,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Ready,
            2 => Kind::Loaded,
            3 => Kind::Describe,
            4 => Kind::Signature,
            5 => Kind::Predict,
            6 => Kind::Result,
            7 => Kind::Error,
            8 => Kind::Event,
            9 => Kind::Shutdown,
            _ => return None,
        })
    }
    /// Only tensor frames may carry a payload.
    fn carries_payload(self) -> bool {
        matches!(self, Kind::Predict | Kind::Result)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the child closed the broker pipe")]
    Closed,
    #[error("broker read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame magic {0:02x?}")]
    Magic([u8; 4]),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("non-zero reserved bytes")]
    Reserved,
    #[error("frame header of {got} bytes exceeds the {max}-byte limit")]
    HeaderTooLarge { got: u64, max: u64 },
    #[error("payload of {got} bytes exceeds the {max}-byte limit")]
    PayloadTooLarge { got: u64, max: u64 },
    #[error("{kind:?} frames carry no payload, got {got} bytes")]
    UnexpectedPayload { kind: Kind, got: u64 },
    #[error("malformed {kind:?} header: {why}")]
    BadHeader { kind: Kind, why: String },
    #[error("unexpected {got:?} frame while waiting for {wanted}")]
    Unexpected { got: Kind, wanted: &'static str },
}

/// A frame whose preamble and header were read and checked; `payload_len` bytes follow.
#[derive(Debug)]
pub struct RawFrame {
    pub kind: Kind,
    pub header: Vec<u8>,
    pub payload_len: u64,
}

impl RawFrame {
    pub fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, FrameError> {
        serde_json::from_slice(&self.header).map_err(|e| FrameError::BadHeader { kind: self.kind, why: e.to_string() })
    }
}

/// Pure check of the fixed-size preamble.
/// `expected` lists the kinds the reader can use now (EVENT is always accepted); anything else
/// is a breach before its lengths are even looked at, so a forged frame cannot pose as a
/// legitimately large result.
pub fn decode_preamble(p: &[u8; PREAMBLE], limits: &Limits, expected: &[Kind]) -> Result<(Kind, u32, u64), FrameError> {
    let magic = [p[0], p[1], p[2], p[3]];
    if magic != MAGIC {
        return Err(FrameError::Magic(magic));
    }
    let kind = Kind::from_u8(p[4]).ok_or(FrameError::UnknownKind(p[4]))?;
    if kind != Kind::Event && !expected.contains(&kind) {
        return Err(FrameError::Unexpected { got: kind, wanted: "another kind" });
    }
    if p[5..8] != [0, 0, 0] || p[12..16] != [0, 0, 0, 0] {
        return Err(FrameError::Reserved);
    }
    let header_len = u32::from_le_bytes([p[8], p[9], p[10], p[11]]);
    let payload_len = u64::from_le_bytes(p[16..24].try_into().expect("8 bytes"));
    if header_len > limits.max_header {
        return Err(FrameError::HeaderTooLarge { got: header_len as u64, max: limits.max_header as u64 });
    }
    if !kind.carries_payload() && payload_len != 0 {
        return Err(FrameError::UnexpectedPayload { kind, got: payload_len });
    }
    if payload_len > limits.max_payload {
        return Err(FrameError::PayloadTooLarge { got: payload_len, max: limits.max_payload });
    }
    Ok((kind, header_len, payload_len))
}

pub fn encode_preamble(kind: Kind, header_len: u32, payload_len: u64) -> [u8; PREAMBLE] {
    let mut p = [0u8; PREAMBLE];
    p[..4].copy_from_slice(&MAGIC);
    p[4] = kind as u8;
    p[8..12].copy_from_slice(&header_len.to_le_bytes());
    p[16..24].copy_from_slice(&payload_len.to_le_bytes());
    p
}

/// Reads one frame's preamble and header (blocking). End-of-file before the first byte is
/// `Closed`; the payload, if any, is left for the caller to stream.
pub fn read_frame(r: &mut impl Read, limits: &Limits, expected: &[Kind]) -> Result<RawFrame, FrameError> {
    let mut p = [0u8; PREAMBLE];
    let mut got = 0;
    while got < PREAMBLE {
        let n = r.read(&mut p[got..])?;
        if n == 0 {
            return Err(if got == 0 {
                FrameError::Closed
            } else {
                FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())
            });
        }
        got += n;
    }
    let (kind, header_len, payload_len) = decode_preamble(&p, limits, expected)?;
    // At most max_header (1 MiB), checked just above.
    let mut header = vec![0u8; header_len as usize];
    r.read_exact(&mut header)?;
    Ok(RawFrame { kind, header, payload_len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: &[Kind] = &[Kind::Ready, Kind::Loaded, Kind::Signature, Kind::Result, Kind::Error];

    #[test]
    fn broker_rejects_a_frame_of_the_wrong_kind_before_its_lengths() {
        let p = encode_preamble(Kind::Result, 2, u64::MAX);
        assert!(matches!(decode_preamble(&p, &limits(), &[Kind::Loaded]), Err(FrameError::Unexpected { .. })));
    }

    fn limits() -> Limits {
        Limits::with_max_payload(1 << 20)
    }

    #[test]
    fn broker_rejects_oversized_header() {
        let p = encode_preamble(Kind::Loaded, (1 << 20) + 1, 0);
        assert!(matches!(decode_preamble(&p, &limits(), ALL), Err(FrameError::HeaderTooLarge { .. })));
    }

    #[test]
    fn broker_rejects_oversized_payload() {
        let p = encode_preamble(Kind::Result, 2, (1 << 20) + 1);
        assert!(matches!(decode_preamble(&p, &limits(), ALL), Err(FrameError::PayloadTooLarge { .. })));
    }

    #[test]
    fn broker_rejects_payload_on_control_frames() {
        let p = encode_preamble(Kind::Error, 2, 1);
        assert!(matches!(decode_preamble(&p, &limits(), ALL), Err(FrameError::UnexpectedPayload { .. })));
    }

    #[test]
    fn broker_rejects_bad_magic_kind_and_reserved() {
        let mut p = encode_preamble(Kind::Ready, 2, 0);
        p[0] = b'X';
        assert!(matches!(decode_preamble(&p, &limits(), ALL), Err(FrameError::Magic(_))));
        let mut p = encode_preamble(Kind::Ready, 2, 0);
        p[4] = 200;
        assert!(matches!(decode_preamble(&p, &limits(), ALL), Err(FrameError::UnknownKind(200))));
        let mut p = encode_preamble(Kind::Ready, 2, 0);
        p[13] = 1;
        assert!(matches!(decode_preamble(&p, &limits(), ALL), Err(FrameError::Reserved)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn preamble_decoder_never_panics_and_respects_limits(bytes in proptest::array::uniform24(any::<u8>())) {
            if let Ok((kind, h, p)) = decode_preamble(&bytes, &limits(), ALL) {
                prop_assert!(h <= 1 << 20);
                prop_assert!(p <= 1 << 20);
                prop_assert!(p == 0 || kind.carries_payload());
            }
        }
    }
}
