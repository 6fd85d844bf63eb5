//! File descriptors and environment of the helper: what survives into the sandbox.
//! Assumes the supervisor placed exactly the fds below; everything else is closed, so nothing
//! inherited (a terminal, a socket, a host file) reaches the model.

use std::ffi::CString;
use std::os::fd::RawFd;

use nix::errno::Errno;

use super::plan::Plan;
use super::status::StepError;

/// Fds in the child, fixed by contract with the supervisor and the Python loader.
pub const CHILD_PLAN: RawFd = 3;
pub const CHILD_STATUS: RawFd = 4;
/// The loader reads requests here.
pub const CHILD_BROKER_IN: RawFd = 5;
/// The loader writes responses here.
pub const CHILD_BROKER_OUT: RawFd = 6;
const FIRST_UNUSED: u32 = 7;

/// Step 0: dup2 the inherited fds (all >= 10) onto 3..=6 in contract order.
pub fn place(inherited: &[i32]) -> Result<(), Errno> {
    for (src, dst) in inherited.iter().zip([CHILD_PLAN, CHILD_STATUS, CHILD_BROKER_IN, CHILD_BROKER_OUT]) {
        if *src < 10 {
            return Err(Errno::EBADF);
        }
        nix::unistd::dup2(*src, dst)?;
    }
    Ok(())
}

/// Step 1: parent-death signal, close unknown fds, new session.
pub fn sanitise(_plan: &Plan) -> Result<(), StepError> {
    // If the supervisor dies, so do we (prctl(2) PR_SET_PDEATHSIG).
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| StepError::new("sanitise.pdeathsig", e, "PR_SET_PDEATHSIG"))?;
    // close_range(2): everything above our contract fds.
    // SAFETY: closing fds we do not own is the point; no Rust object refers to them (this
    // process has only created the plan/status objects, which use fds 3 and 4).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, FIRST_UNUSED, u32::MAX, 0u32) };
    if rc != 0 {
        return Err(StepError::new("sanitise.close_range", Errno::last(), "close inherited fds"));
    }
    // No controlling terminal: TIOCSTI on a shared tty can type commands into the user's
    // shell (CVE-2017-5226).
    nix::unistd::setsid().map_err(|e| StepError::new("sanitise.setsid", e, "new session"))?;
    Ok(())
}

/// The waiting roles (H outside the namespace, A as its init) need none of the pipes.
pub fn close_all_for_reaper() {
    // SAFETY: the reaper only waits from here on; closing every fd is intended. A failure
    // leaves fds open, which delays end-of-file for the supervisor but opens nothing.
    unsafe { libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) };
}

/// Step 13: execve the interpreter with only the plan's environment. Returns only on failure.
pub fn exec_interpreter(plan: &Plan) -> StepError {
    let cstr = |s: &str| CString::new(s).map_err(|_| StepError::check("exec.args", "NUL in argument"));
    let build = || -> Result<(CString, Vec<CString>, Vec<CString>), StepError> {
        let exe = cstr(&plan.exe.to_string_lossy())?;
        let argv = plan.argv.iter().map(|a| cstr(a)).collect::<Result<Vec<_>, _>>()?;
        let env = plan.env.iter().map(|(k, v)| cstr(&format!("{k}={v}"))).collect::<Result<Vec<_>, _>>()?;
        Ok((exe, argv, env))
    };
    match build() {
        Ok((exe, argv, env)) => match nix::unistd::execve(&exe, &argv, &env) {
            Err(e) => StepError::new("exec", e, format!("execve {}", plan.exe.display())),
            Ok(never) => match never {},
        },
        Err(e) => e,
    }
}
