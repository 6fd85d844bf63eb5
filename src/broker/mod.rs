//! The broker: the only channel between the supervisor and the sandboxed loader. Two pipes
//! (requests in, responses out), request/response frames on a long-lived child:
//! `READY, LOADED, (DESCRIBE→SIGNATURE | PREDICT→RESULT | →ERROR)*, SHUTDOWN`; the child may
//! send EVENT frames at any point before a response.
//!
//! Frame (version 1), all integers little-endian:
//! ```text
//! 0   4  magic "SLB" + version byte 0x01
//! 4   1  kind (Kind)
//! 5   3  zero
//! 8   4  header_len   <= Limits::max_header
//! 12  4  zero
//! 16  8  payload_len  <= Limits::max_payload; 0 unless the kind carries tensors
//! 24  header_len bytes of UTF-8 JSON (the kind's header type, unknown fields rejected)
//! ..  payload_len bytes: tensors' raw little-endian C-order bytes, in header order
//! ```
//! Everything the child sends is hostile: lengths, rank, element counts (checked
//! multiplication), tensor count and total bytes are bounded *before* anything is allocated,
//! and a breach ends the run with exit 4.

pub mod frame;
pub mod messages;
pub mod tensor;

pub use frame::{FrameError, Kind};
pub use tensor::{DType, TensorMeta, TensorsHeader};

/// Bounds applied to everything read from the child.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header: u32,
    pub max_payload: u64,
    pub max_rank: usize,
    pub max_tensors: usize,
    pub max_name: usize,
    pub max_events: usize,
}

impl Limits {
    pub fn with_max_payload(max_payload: u64) -> Limits {
        Limits { max_header: 1 << 20, max_payload, max_rank: 32, max_tensors: 1024, max_name: 256, max_events: 256 }
    }
}
