//! Naming the syscall behind a seccomp kill. SIGSYS alone does not say which call it was; the
//! kernel logs each seccomp kill (audit type 1326, /proc/sys/kernel/seccomp/actions_logged) with
//! the process's host pid and the syscall number, readable by root from /dev/kmsg.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// The syscall the kernel logged for a seccomp kill of `pid`, if the log is readable and has it.
pub fn seccomp_kill_syscall(pid: i32) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg").ok()?;
    let needle = format!(" pid={pid} ");
    let mut found = None;
    let mut buf = vec![0u8; 8192];
    // Each read returns one record; the ring buffer is bounded, and so is this loop.
    for _ in 0..100_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                if rec.contains("type=1326") && rec.contains(&needle) {
                    found = rec.split_whitespace().find_map(|w| w.strip_prefix("syscall=")?.parse::<i64>().ok());
                }
            }
            // EPIPE: a record was overwritten while reading; keep going.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    let nr = found?;
    Some(crate::policy::syscalls::name(nr).map_or_else(|| format!("syscall {nr}"), str::to_string))
}
