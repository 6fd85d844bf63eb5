//! Tensor files on the user's side of the broker: reading `.npy/.npz/.json` inputs (bounded,
//! never unpickling) and streaming outputs into `.npy/.npz/.json` files or a bounded preview.

pub mod input;
pub mod output;
pub mod values;
