//! Step 2: joining the per-run cgroup(s) that the supervisor created (memory and pids
//! limits), while the host's cgroup tree is still visible. Assumes a single-threaded process
//! that has not yet unshared its cgroup namespace.
//!
//! Why `tasks` on cgroup v1: writing a pid to `cgroup.procs` takes the write side of the
//! kernel's global `cgroup_threadgroup_rwsem`, a per-cpu rwsem whose write side waits for an
//! RCU grace period (`rcu_sync_enter` → `synchronize_rcu`) whenever no other writer ran
//! recently: measured 6-19 ms per run on this kind of host, more than the whole rest of the
//! sandbox set-up. Writing `0` (the calling thread) to v1's `tasks` file moves a single
//! thread, which the kernel does without that lock (`cgroup_procs_write_start`: "If we migrate
//! a single thread, we don't care about threadgroup stability"): measured 0.04 ms. On a kernel
//! without that shortcut it is as slow as before, never less confined. For a single-threaded
//! process it is the same move: every thread it has, and every process it forks later, is in
//! the new cgroup. We check both facts: the thread count before, the member list after.

use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::status::StepError;

/// Joins each cgroup whose `cgroup.procs` the plan names: through the `tasks` file beside it
/// where there is one (cgroup v1), else through `cgroup.procs` (v2 has no `tasks`).
pub fn join(procs_files: &[PathBuf]) -> Result<(), StepError> {
    for procs in procs_files {
        let tasks = procs.with_file_name("tasks");
        let file = if tasks.exists() {
            single_threaded()?;
            tasks
        } else {
            procs.clone()
        };
        std::fs::write(&file, b"0")
            .map_err(|e| StepError::new("cgroup.join", errno(&e), file.display().to_string()))?;
        verify_member(&file)?;
    }
    Ok(())
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

/// `tasks` moves only the calling thread: refuse if there is any other.
fn single_threaded() -> Result<(), StepError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| StepError::new("cgroup.threads", errno(&e), "/proc/self/status"))?;
    let threads = status.lines().find_map(|l| l.strip_prefix("Threads:")).map(str::trim);
    match threads {
        Some("1") => Ok(()),
        other => Err(StepError::check(
            "cgroup.threads",
            format!("the helper must be single-threaded to join through `tasks`, it has {other:?} threads"),
        )),
    }
}

/// Reads the file we wrote back (both list members, one id per line) and looks for our pid,
/// which is also our only thread's id.
fn verify_member(file: &Path) -> Result<(), StepError> {
    let me = std::process::id().to_string();
    let members = std::fs::read_to_string(file)
        .map_err(|e| StepError::new("cgroup.verify", errno(&e), file.display().to_string()))?;
    if members.lines().any(|l| l.trim() == me) {
        Ok(())
    } else {
        Err(StepError::check("cgroup.verify", format!("pid {me} is not listed in {} after joining", file.display())))
    }
}
