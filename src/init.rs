//! sandload as PID 1 of a container (`ENTRYPOINT ["sandload"]`): the kernel gives PID 1 no
//! default signal actions and makes it the parent of every orphan. So PID 1 forks the real
//! sandload, forwards SIGTERM/SIGINT/SIGHUP to it, reaps every orphan, and exits with its
//! status, the way tini does. Runs before any thread exists.

use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

/// Returns in the child (which goes on to be sandload); never returns in PID 1.
pub fn become_init_if_pid1() {
    if std::process::id() != 1 {
        return;
    }
    let mut forwarded = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2] {
        forwarded.add(s);
    }
    let mut waited = forwarded;
    waited.add(Signal::SIGCHLD);
    // Block them before forking so none is lost between fork and the wait loop.
    if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), None).is_err() {
        return;
    }
    // SAFETY: single-threaded here (main has not started any runtime).
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            // The real sandload: default signal handling again.
            if sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&waited), None).is_err() {
                std::process::exit(70);
            }
        }
        Ok(ForkResult::Parent { child }) => loop {
            match waited.wait() {
                Ok(Signal::SIGCHLD) => loop {
                    match waitpid(Pid::from_raw(-1), Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::Exited(p, c)) if p == child => std::process::exit(c),
                        Ok(WaitStatus::Signaled(p, s, _)) if p == child => std::process::exit(128 + s as i32),
                        Ok(WaitStatus::StillAlive) | Err(_) => break,
                        Ok(_) => continue,
                    }
                },
                Ok(sig) => {
                    if kill(child, sig).is_err() {
                        // The child is gone; SIGCHLD will end the loop.
                    }
                }
                Err(_) => continue,
            }
        },
        Err(_) => std::process::exit(70),
    }
}
