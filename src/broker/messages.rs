//! Headers of the control frames. Every field is bounded by the frame's header limit and
//! escaped before it is shown to anyone.

use serde::{Deserialize, Serialize};

use super::DType;

/// READY: the interpreter imported its stack and installed phase 2.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    pub python: String,
    pub keras: String,
    pub backend: String,
    pub import_seconds: f64,
    pub seccomp_phase2: bool,
    pub audit_hook: bool,
}

/// One input or output of the model; `None` in a shape is a free dimension (batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigTensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<Option<u64>>,
}

/// LOADED / SIGNATURE.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub inputs: Vec<SigTensor>,
    pub outputs: Vec<SigTensor>,
    #[serde(default)]
    pub load_seconds: f64,
}

/// ERROR: what the model raised.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorMsg {
    pub phase: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    pub traceback: String,
}

/// EVENT: something the loader's audit hook saw the model attempt (reported by the child, so
/// untrusted: evidence of intent, never of safety).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub event: String,
    pub detail: String,
}
