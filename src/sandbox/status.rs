//! The helper's status pipe: one JSON line per message, close-on-exec, so end-of-file without
//! an error line means the interpreter was executed.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

/// A confinement step that failed, with the errno the kernel gave.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("sandbox step {step:?} failed: {detail} (errno {errno})")]
pub struct StepError {
    pub step: String,
    pub errno: i32,
    pub detail: String,
}

impl StepError {
    pub fn new(step: &str, errno: nix::errno::Errno, detail: impl Into<String>) -> Self {
        StepError { step: step.into(), errno: errno as i32, detail: detail.into() }
    }
    /// For failures that are not a syscall's (a check that read back the wrong value).
    pub fn check(step: &str, detail: impl Into<String>) -> Self {
        StepError { step: step.into(), errno: 0, detail: detail.into() }
    }
}

/// What travels on the status pipe.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// Host pid of the pid namespace's init: killing it kills every process in the sandbox.
    Init {
        pid: i32,
    },
    Failed(StepError),
}

pub struct Reporter {
    file: Option<std::fs::File>,
}

impl Reporter {
    pub fn from_fd(fd: RawFd) -> std::io::Result<Reporter> {
        // Check the fd exists before taking ownership of it.
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).map_err(std::io::Error::from)?;
        // SAFETY: the supervisor placed the status pipe at this fd number for us and nothing
        // else in this fresh process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // dup2 in the supervisor cleared close-on-exec; it must be set again, since end-of-file
        // at execve is how the supervisor learns the interpreter started.
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))
            .map_err(std::io::Error::from)?;
        Ok(Reporter { file: Some(std::fs::File::from(owned)) })
    }

    fn write(&mut self, msg: &Message) -> std::io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
            line.push(b'\n');
            f.write_all(&line)?;
        }
        Ok(())
    }

    pub fn announce_init(&mut self, pid: i32) -> Result<(), StepError> {
        self.write(&Message::Init { pid }).map_err(|e| StepError::check("status.announce", format!("status pipe: {e}")))
    }

    pub fn send(&mut self, err: &StepError) {
        // The supervisor treats a missing line as an unexplained failure and still exits 7,
        // so a failed write here loses detail, never safety.
        if self.write(&Message::Failed(err.clone())).is_err() {
            eprintln!("sandload helper: {err}");
        }
    }

    pub fn close(&mut self) {
        self.file = None;
    }
}
