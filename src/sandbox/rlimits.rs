//! Resource limits (setrlimit(2)) applied before capabilities are dropped. Lowering needs no
//! privilege; raising would, so the child can never undo them.

use nix::sys::resource::{setrlimit, Resource};

use super::plan::{Rlimit, RlimitKind};
use super::status::StepError;

pub fn apply(limits: &[Rlimit]) -> Result<(), StepError> {
    for l in limits {
        let res = match l.resource {
            RlimitKind::Core => Resource::RLIMIT_CORE,
            RlimitKind::Cpu => Resource::RLIMIT_CPU,
            RlimitKind::Data => Resource::RLIMIT_DATA,
            RlimitKind::Fsize => Resource::RLIMIT_FSIZE,
            RlimitKind::Nofile => Resource::RLIMIT_NOFILE,
            RlimitKind::Nproc => Resource::RLIMIT_NPROC,
            RlimitKind::Memlock => Resource::RLIMIT_MEMLOCK,
        };
        // Never raise past the current hard limit (we could not, and should not try).
        let (_, hard) = nix::sys::resource::getrlimit(res)
            .map_err(|e| StepError::new("rlimits.get", e, format!("{:?}", l.resource)))?;
        let v = l.value.min(hard);
        // CPU: the soft limit sends SIGXCPU, so the verdict can name the limit; the hard limit
        // (SIGKILL) follows a few seconds later for a child that ignores SIGXCPU.
        let h = if l.resource == RlimitKind::Cpu { v.saturating_add(5).min(hard) } else { v };
        setrlimit(res, v, h).map_err(|e| StepError::new("rlimits.set", e, format!("{:?}={v}", l.resource)))?;
    }
    Ok(())
}
