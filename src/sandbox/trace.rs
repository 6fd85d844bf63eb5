//! Step timestamps for benchmarks: with tracing on, each confinement step prints
//! `sandload-trace <pid> <step> <CLOCK_MONOTONIC ns>` to the helper's stderr, so the cost of
//! every step can be measured without strace's per-syscall overhead. Off unless the plan's
//! environment carries `SANDLOAD_TRACE` (only `sandload __bench-exec` puts it there); when
//! off, `mark` is one relaxed atomic load. Confines nothing and changes no step.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// The variable that switches tracing on; it also reaches the interpreter, which ignores it.
pub const ENV: &str = "SANDLOAD_TRACE";

static ON: AtomicBool = AtomicBool::new(false);

/// Monotonic nanoseconds, comparable across the supervisor, the helper and its forks.
pub fn now_ns() -> u128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only into the timespec we pass; CLOCK_MONOTONIC always exists.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

pub fn enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Prints one trace line at time `at` (or now).
pub fn mark_at(step: &str, at: Option<u128>) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let t = at.unwrap_or_else(now_ns);
    // Tracing is diagnostics only: a failed write to stderr changes no confinement step.
    if writeln!(std::io::stderr(), "sandload-trace {} {step} {t}", std::process::id()).is_err() {}
}

pub fn mark(step: &str) {
    mark_at(step, None);
}
