//! `sandload doctor`: which confinement layers this host offers, each probed for real in a
//! throw-away child, and for anything missing the concrete fix.

use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::ForkResult;
use serde::Serialize;

use crate::cli::DoctorArgs;

#[derive(Serialize)]
struct Check {
    layer: &'static str,
    ok: bool,
    detail: String,
    fix: Option<String>,
}

/// Runs `f` in a forked child and reports whether it returned true. doctor runs before any
/// runtime starts, so the process is single-threaded here.
fn probe(f: impl FnOnce() -> bool) -> bool {
    // SAFETY: single-threaded at this point (no runtime was built for `doctor`).
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let ok = f();
            // SAFETY: _exit is async-signal-safe and skips destructors of the parent's state.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        Ok(ForkResult::Parent { child }) => matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0))),
        Err(_) => false,
    }
}

fn userns_flags() -> CloneFlags {
    if nix::unistd::Uid::effective().is_root() {
        CloneFlags::empty()
    } else {
        CloneFlags::CLONE_NEWUSER
    }
}

fn read(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_default().trim().to_string()
}

pub fn run(args: &DoctorArgs) -> anyhow::Result<i32> {
    let mut checks = Vec::new();
    let in_container =
        std::path::Path::new("/.dockerenv").exists() || std::path::Path::new("/run/.containerenv").exists();
    let container_fix = |docker: &str| {
        if in_container {
            Some(docker.to_string())
        } else {
            None
        }
    };

    let userns = probe(|| nix::sched::unshare(CloneFlags::CLONE_NEWUSER).is_ok());
    let mut fix = None;
    if !userns {
        fix = Some(if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" {
            "Ubuntu's AppArmor restricts unprivileged user namespaces: sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for sandload".into()
        } else if read("/proc/sys/user/max_user_namespaces") == "0" {
            "sysctl user.max_user_namespaces=15000".into()
        } else if in_container {
            "Docker's default seccomp profile blocks unshare: run with --security-opt seccomp=policies/container-seccomp.json (or podman --security-opt seccomp=...)".into()
        } else {
            "enable user namespaces (kernel.unprivileged_userns_clone=1 on Debian kernels)".into()
        });
    }
    checks.push(Check { layer: "user namespace", ok: userns, detail: String::new(), fix });

    let uts_ok = probe(|| {
        nix::sched::unshare(userns_flags() | CloneFlags::CLONE_NEWUTS).is_ok()
            && nix::unistd::sethostname("probe").is_ok()
    });
    checks.push(Check {
        layer: "hostname in a new uts namespace",
        ok: uts_ok,
        detail: String::new(),
        fix: (!uts_ok).then(|| {
            "a seccomp profile blocks sethostname (podman's default): --security-opt seccomp=policies/container-seccomp.json"
                .into()
        }),
    });

    for (name, flag) in [
        ("mount namespace", CloneFlags::CLONE_NEWNS),
        ("pid namespace", CloneFlags::CLONE_NEWPID),
        ("net namespace", CloneFlags::CLONE_NEWNET),
        ("ipc namespace", CloneFlags::CLONE_NEWIPC),
        ("uts namespace", CloneFlags::CLONE_NEWUTS),
        ("cgroup namespace", CloneFlags::CLONE_NEWCGROUP),
    ] {
        let ok = probe(|| nix::sched::unshare(userns_flags() | flag).is_ok());
        checks.push(Check {
            layer: name,
            ok,
            detail: String::new(),
            fix: (!ok).then(|| "the kernel or the container runtime forbids it; see the user namespace fix".into()),
        });
    }

    let proc_ok = probe(|| {
        if nix::sched::unshare(userns_flags() | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID).is_err() {
            return false;
        }
        // SAFETY: single-threaded probe child.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => {
                use nix::mount::{mount, MsFlags};
                let ok = mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                    .is_ok()
                    && mount(
                        Some("proc"),
                        "/proc",
                        Some("proc"),
                        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                        None::<&str>,
                    )
                    .is_ok();
                // SAFETY: see probe().
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            Ok(ForkResult::Parent { child }) => matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0))),
            Err(_) => false,
        }
    });
    checks.push(Check {
        layer: "/proc in a new pid namespace",
        ok: proc_ok,
        detail: String::new(),
        fix: (!proc_ok).then(|| container_fix("Docker/podman mask /proc: add --security-opt systempaths=unconfined (Kubernetes: securityContext.procMount: Unmasked)").unwrap_or_else(|| "a masked or read-only /proc prevents mounting a fresh one".into())),
    });

    let abi = crate::sandbox::landlock::kernel_abi();
    checks.push(Check {
        layer: "landlock",
        ok: abi >= 6,
        detail: format!("ABI {abi}"),
        fix: (abi < 6).then(|| format!("Landlock ABI {abi} < 6: use Linux >= 6.12 with lsm=...,landlock, or run with --landlock-min-abi {abi} (reported)")),
    });

    let seccomp_ok = std::fs::read_to_string("/proc/self/status").map(|s| s.contains("Seccomp:")).unwrap_or(false)
        && probe(|| nix::sys::prctl::set_no_new_privs().is_ok());
    checks.push(Check {
        layer: "seccomp + no_new_privs",
        ok: seccomp_ok,
        detail: String::new(),
        fix: (!seccomp_ok).then(|| "a kernel with CONFIG_SECCOMP_FILTER".into()),
    });

    let cg2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let v1_mem = std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    let writable = |p: &str| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    let cg_detail = format!(
        "v2 {}; v1 memory {}",
        if cg2 {
            if writable("/sys/fs/cgroup") {
                "present, writable"
            } else {
                "present, read-only"
            }
        } else {
            "absent"
        },
        if v1_mem {
            if writable("/sys/fs/cgroup/memory") {
                "present, writable"
            } else {
                "present, read-only"
            }
        } else {
            "absent"
        },
    );
    let cg_ok = (cg2 && writable("/sys/fs/cgroup")) || (v1_mem && writable("/sys/fs/cgroup/memory"));
    checks.push(Check {
        layer: "cgroup memory/pids limits",
        ok: cg_ok,
        detail: cg_detail,
        fix: (!cg_ok).then(|| {
            "optional: without a writable cgroup, --memory uses RLIMIT_DATA; under systemd use Delegate=yes".into()
        }),
    });

    let required_ok = checks.iter().filter(|c| c.layer != "cgroup memory/pids limits").all(|c| c.ok);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"ok": required_ok, "checks": checks}))?);
    } else {
        for c in &checks {
            println!("{} {:<32} {}", if c.ok { "ok  " } else { "MISSING" }, c.layer, c.detail);
            if let Some(f) = &c.fix {
                println!("        fix: {f}");
            }
        }
        println!(
            "{}",
            if required_ok {
                "sandload can confine models on this host."
            } else {
                "sandload will refuse to run models here (exit 7) until the above is fixed."
            }
        );
    }
    Ok(if required_ok { 0 } else { 7 })
}
