//! Installing the phase-1 seccomp filter stack (seccomp(2)). The supervisor compiled it from
//! `policies/seccomp-phase1.toml`; this only unpacks and installs, last before execve.

use seccompiler::{sock_filter, BpfProgram};

use super::status::StepError;

/// Unpacks `code | jt << 16 | jf << 24 | k << 32` (see `pack`).
pub fn unpack(words: &[u64]) -> BpfProgram {
    words
        .iter()
        .map(|w| sock_filter { code: *w as u16, jt: (*w >> 16) as u8, jf: (*w >> 24) as u8, k: (*w >> 32) as u32 })
        .collect()
}

pub fn pack(prog: &BpfProgram) -> Vec<u64> {
    prog.iter().map(|i| i.code as u64 | (i.jt as u64) << 16 | (i.jf as u64) << 24 | (i.k as u64) << 32).collect()
}

pub fn install(stack: &[Vec<u64>]) -> Result<(), StepError> {
    if stack.is_empty() {
        return Err(StepError::check("seccomp", "empty filter stack"));
    }
    for (i, words) in stack.iter().enumerate() {
        seccompiler::apply_filter(&unpack(words))
            .map_err(|e| StepError::check("seccomp.install", format!("filter {i}: {e}")))?;
    }
    Ok(())
}
