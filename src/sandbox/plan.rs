//! The validated plan the supervisor hands the helper (JSON on an inherited pipe). Everything
//! here was checked by the supervisor; the helper only applies it.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::status::StepError;

/// Confinement layers that `--unsafe-disable-layer` can switch off (tests prove each layer by
/// showing the attack succeed without it). Namespaces and the minimal root are not optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Landlock,
    Seccomp,
    /// The network namespace (the child then shares the host's network).
    Netns,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Interpreter to execve, absolute (may be a venv symlink; it resolves inside the view).
    pub exe: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Read-only binds, host path = sandbox path, all canonical.
    pub ro_binds: Vec<PathBuf>,
    /// Symlinks to recreate (merged-/usr layouts): (link path, target).
    pub symlinks: Vec<(PathBuf, PathBuf)>,
    /// The model (file or SavedModel directory) and where it appears inside.
    pub model_src: PathBuf,
    pub model_dst: PathBuf,
    pub tmp_size: u64,
    pub uid: u32,
    pub gid: u32,
    pub rlimits: Vec<Rlimit>,
    pub landlock: LandlockPlan,
    /// Phase-1 filter stack, each instruction packed as in `struct sock_filter`.
    pub seccomp_phase1: Vec<Vec<u64>>,
    pub disabled: Vec<Layer>,
    /// `cgroup.procs` of the per-run cgroup(s) to join before the namespaces are made (on v1
    /// the helper writes the sibling `tasks` file; see `sandbox::cgroup`).
    pub cgroup_procs: Option<Vec<PathBuf>>,
}

impl Plan {
    pub fn enabled(&self, layer: Layer) -> bool {
        !self.disabled.contains(&layer)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: RlimitKind,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RlimitKind {
    Core,
    Cpu,
    Data,
    Fsize,
    Nofile,
    Nproc,
    Memlock,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LandlockPlan {
    pub min_abi: u8,
    /// Read (and list) only, paths inside the new root.
    pub read: Vec<PathBuf>,
    /// Read and execute: the interpreter and its ELF loader.
    pub exec: Vec<PathBuf>,
    /// Full write access (the private /tmp).
    pub write_dirs: Vec<PathBuf>,
    /// Read and write of single files (/dev/null).
    pub rw_files: Vec<PathBuf>,
}

/// Reads the plan (bounded: the supervisor never sends more than this).
pub fn read_from_fd(fd: RawFd) -> Result<Plan, StepError> {
    const MAX_PLAN: u64 = 4 << 20;
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).map_err(|e| StepError::new("plan.read", e, "no plan fd"))?;
    // SAFETY: the supervisor placed the plan pipe at this fd number; we are its only owner.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut buf = Vec::new();
    file.take(MAX_PLAN).read_to_end(&mut buf).map_err(|e| StepError::check("plan.read", e.to_string()))?;
    serde_json::from_slice(&buf).map_err(|e| StepError::check("plan.parse", e.to_string()))
}
