//! One verdict per run, from what the broker saw and how the child ended.

use std::process::ExitStatus;

use super::session::Outcome;
use crate::broker::FrameError;
use crate::exit::Exit;

pub struct Facts<'a> {
    pub outcome: &'a Outcome,
    pub status: ExitStatus,
    /// Set when the supervisor killed the tree (timeout, Ctrl-C, SIGTERM).
    pub stop: Option<Exit>,
    pub oom: bool,
    /// The pids cgroup refused a fork or a thread.
    pub pids_limited: bool,
}

pub struct Verdict {
    pub exit: Exit,
    pub message: String,
    pub signal: Option<String>,
    /// The syscall a seccomp kill was for, when the kernel log names it.
    pub syscall: Option<String>,
}

/// The helper relays the workload's end as an exit code: 128+n for signal n.
fn workload_signal(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) if c > 128 && c < 160 => Some(c - 128),
        (_, Some(s)) => Some(s),
        _ => None,
    }
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("signal {sig}"))
}

pub fn decide(f: &Facts) -> Verdict {
    let sig = workload_signal(f.status);
    let signal = sig.map(signal_name);
    let v = |exit, message: String| Verdict { exit, message, signal: signal.clone(), syscall: None };
    match f.stop {
        Some(Exit::Timeout) => return v(Exit::Timeout, "timed out; the whole child tree was killed and reaped".into()),
        Some(Exit::Interrupted) => {
            return v(Exit::Interrupted, "interrupted; the whole child tree was killed and reaped".into())
        }
        _ => {}
    }
    if f.oom {
        return v(
            Exit::ResourceLimit,
            "the child hit its memory limit and was killed by the kernel (raise --memory if the model needs more)"
                .into(),
        );
    }
    let died = || -> Option<Verdict> {
        let s = sig?;
        Some(match s {
            libc::SIGSYS => v(
                Exit::Violation,
                "the child was killed by seccomp (SIGSYS): it made a system call outside the allowlist".into(),
            ),
            libc::SIGXCPU => v(Exit::ResourceLimit, "the child used up its CPU-time limit (SIGXCPU)".into()),
            libc::SIGXFSZ => v(Exit::ResourceLimit, "the child wrote past its file-size limit (SIGXFSZ)".into()),
            libc::SIGKILL => {
                v(Exit::ResourceLimit, "the child was killed (SIGKILL), most likely by a resource limit".into())
            }
            s => v(Exit::ModelRaised, format!("the model crashed the interpreter ({})", signal_name(s))),
        })
    };
    let ended_early = matches!(f.outcome, Outcome::ChildGone(_) | Outcome::ModelRaised(_));
    if f.pids_limited && ended_early {
        return v(
            Exit::ResourceLimit,
            "the child hit its process/thread limit (--max-procs) and could not go on".into(),
        );
    }
    match f.outcome {
        Outcome::SetupFailed(Some(e)) => v(
            Exit::SandboxSetup,
            format!(
                "the sandbox could not be set up, nothing was run: step {} failed: {} ({}). Run `sandload doctor` to see which layers this host offers",
                e.step,
                e.detail,
                if e.errno != 0 { nix::errno::Errno::from_raw(e.errno).desc().to_string() } else { "check failed".into() },
            ),
        ),
        Outcome::SetupFailed(None) => v(
            Exit::SandboxSetup,
            format!("the sandbox helper ended ({:?}) without starting the interpreter; run `sandload doctor`", f.status),
        ),
        Outcome::Breach(FrameError::PayloadTooLarge { got, max }) => v(
            Exit::ResourceLimit,
            format!("the child sent {got} bytes of output, over the {max}-byte limit (--max-output-bytes); it was killed"),
        ),
        Outcome::Breach(e) => v(Exit::Violation, format!("broker protocol breach: {e}; the child was killed")),
        Outcome::ModelRaised(e) if e.kind == "MemoryError" => {
            v(Exit::ResourceLimit, format!("the model ran out of memory during {} (raise --memory if it needs more)", e.phase))
        }
        Outcome::ModelRaised(e) => v(
            Exit::ModelRaised,
            format!("the model raised during {}: {}: {}", e.phase, e.kind, e.message.chars().take(2000).collect::<String>()),
        ),
        Outcome::Usage(m) => v(Exit::Usage, m.clone()),
        Outcome::OutputFailed(m) => v(Exit::Internal, format!("writing the outputs failed: {m}")),
        Outcome::ChildGone(when) => died().unwrap_or_else(|| {
            v(Exit::ModelRaised, format!("the child exited ({:?}) {when} without an answer", f.status))
        }),
        Outcome::Done => match sig {
            Some(libc::SIGSYS) => v(Exit::Violation, "the child was killed by seccomp (SIGSYS) after answering".into()),
            _ => v(Exit::Ok, "ok".into()),
        },
    }
}
