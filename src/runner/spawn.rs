//! Building the helper's plan and starting it: `/proc/self/exe __sandbox-helper` with four
//! pipes. Between fork and exec only async-signal-safe calls happen (clearing close-on-exec).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::fcntl::{fcntl, FcntlArg, OFlag};

use crate::policy::{parse_size, Loaded};
use crate::python::Runtime;
use crate::sandbox::plan::{LandlockPlan, Rlimit, RlimitKind};
use crate::sandbox::{Layer, Plan};

pub const LOADER: &str = include_str!("../loader.py");

/// The supervisor's ends of the pipes.
pub struct Pipes {
    pub status: std::fs::File,
    pub requests: std::fs::File,
    pub responses: std::fs::File,
}

pub struct Settings<'a> {
    pub policy: &'a Loaded,
    pub runtime: &'a Runtime,
    pub model_host: &'a Path,
    pub model_inside: &'a Path,
    pub safe_mode: bool,
    pub disabled: &'a [Layer],
    pub landlock_min_abi: u8,
    pub memory: u64,
    pub max_procs: u64,
    pub cpu_seconds: u64,
    pub data_rlimit: bool,
    pub cgroup_procs: Option<Vec<PathBuf>>,
}

pub fn build_plan(s: &Settings) -> anyhow::Result<Plan> {
    let p = &s.policy.policy;
    let mut binds: Vec<PathBuf> = s.runtime.roots.clone();
    let mut symlinks = Vec::new();
    for sp in &p.filesystem.system_paths {
        let Ok(meta) = std::fs::symlink_metadata(sp) else { continue };
        if meta.file_type().is_symlink() {
            symlinks.push((sp.clone(), std::fs::read_link(sp)?));
        }
        if let Ok(c) = sp.canonicalize() {
            binds.push(c);
        }
    }
    binds.push(s.runtime.elf_interp.clone());
    let binds = dedupe_nested(binds);
    let mut read: Vec<PathBuf> = binds.clone();
    read.extend([
        s.model_inside.to_path_buf(),
        "/proc".into(),
        "/dev/urandom".into(),
        "/dev/random".into(),
        "/dev/zero".into(),
    ]);
    let mut quiet: Vec<String> = read.iter().map(|p| p.display().to_string()).collect();
    // Hardware probes (jax looks for TPUs under /sys/bus/pci) are not worth reporting; /sys is
    // not even mounted inside.
    quiet.extend(["/tmp".into(), "/proc/self".into(), "/dev".into(), "/sys".into()]);
    quiet.retain(|q| q != "/proc");

    let phase2: Vec<String> = if s.disabled.contains(&Layer::Seccomp) {
        Vec::new()
    } else {
        s.policy.phase2.compile()?.iter().map(|f| hex(&crate::policy::seccomp::to_bytes(f))).collect()
    };
    let config = serde_json::json!({
        "model": s.model_inside,
        "keras": "auto",
        "safe_mode": s.safe_mode,
        "phase2": phase2,
        "nr_seccomp": libc::SYS_seccomp,
        "quiet_read": quiet,
    });
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("HOME".into(), "/nonexistent".into()),
        ("TMPDIR".into(), "/tmp".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("PYTHONNOUSERSITE".into(), "1".into()),
        ("TF_CPP_MIN_LOG_LEVEL".into(), "2".into()),
    ];
    for k in &p.env.pass {
        if let Ok(v) = std::env::var(k) {
            env.push((k.clone(), v));
        }
    }
    let mut rlimits = vec![
        Rlimit { resource: RlimitKind::Core, value: 0 },
        Rlimit { resource: RlimitKind::Nofile, value: p.limits.open_files },
        Rlimit { resource: RlimitKind::Nproc, value: s.max_procs },
        Rlimit { resource: RlimitKind::Fsize, value: parse_size(&p.limits.file_size).map_err(anyhow::Error::msg)? },
        Rlimit { resource: RlimitKind::Cpu, value: s.cpu_seconds },
    ];
    if s.data_rlimit {
        rlimits.push(Rlimit { resource: RlimitKind::Data, value: s.memory });
    }
    let seccomp_phase1 = if s.disabled.contains(&Layer::Seccomp) {
        Vec::new()
    } else {
        s.policy.phase1.compile()?.iter().map(crate::sandbox::seccomp::pack).collect()
    };
    Ok(Plan {
        exe: s.runtime.exe.clone(),
        argv: vec![
            s.runtime.exe.display().to_string(),
            "-I".into(),
            "-B".into(),
            "-c".into(),
            LOADER.into(),
            config.to_string(),
        ],
        env,
        ro_binds: binds,
        symlinks,
        model_src: s.model_host.to_path_buf(),
        model_dst: s.model_inside.to_path_buf(),
        tmp_size: parse_size(&p.filesystem.tmp_size).map_err(anyhow::Error::msg)?,
        uid: p.identity.uid,
        gid: p.identity.gid,
        rlimits,
        landlock: LandlockPlan {
            min_abi: s.landlock_min_abi,
            read,
            exec: vec![s.runtime.canonical.clone(), s.runtime.elf_interp.clone()],
            write_dirs: vec!["/tmp".into()],
            rw_files: vec!["/dev/null".into()],
        },
        seccomp_phase1,
        disabled: s.disabled.to_vec(),
        cgroup_procs: s.cgroup_procs.clone(),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Drops paths that another path in the list already contains; parents sort first.
fn dedupe_nested(mut v: Vec<PathBuf>) -> Vec<PathBuf> {
    v.sort();
    v.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in v {
        if !out.iter().any(|q| p.starts_with(q)) {
            out.push(p);
        }
    }
    out
}

/// A pipe whose both ends are close-on-exec and numbered >= 10 (the helper dup2s them onto
/// 3..=6; numbers below 10 could collide).
fn pipe_hi() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let hi = |fd: OwnedFd| -> std::io::Result<OwnedFd> {
        let n = fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(10))?;
        // SAFETY: F_DUPFD_CLOEXEC returned a new fd that only we own.
        Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(n) })
    };
    Ok((hi(r)?, hi(w)?))
}

/// Starts the helper with the plan written into its plan pipe.
pub fn spawn(plan: &Plan) -> anyhow::Result<(tokio::process::Child, Pipes)> {
    let (plan_r, plan_w) = pipe_hi()?;
    let (status_r, status_w) = pipe_hi()?;
    let (req_r, req_w) = pipe_hi()?;
    let (resp_r, resp_w) = pipe_hi()?;
    // Big pipes: fewer wake-ups when tensors stream through (fcntl(2) F_SETPIPE_SZ).
    for fd in [&req_w, &resp_w] {
        if fcntl(fd.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(1 << 20)).is_err() {
            // /proc/sys/fs/pipe-max-size may be lower; the default size only costs speed.
        }
    }
    let child_fds = [plan_r.as_raw_fd(), status_w.as_raw_fd(), req_r.as_raw_fd(), resp_w.as_raw_fd()];
    let fd_arg = child_fds.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(",");
    let mut cmd = tokio::process::Command::new("/proc/self/exe");
    cmd.arg("__sandbox-helper")
        .arg("--fds")
        .arg(fd_arg)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: the closure only calls fcntl(F_SETFD), which is async-signal-safe, on fds that
    // stay open in the parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            for fd in child_fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| anyhow::anyhow!("cannot start the sandbox helper: {e}"))?;
    // The plan is small (well under the 64 KiB pipe buffer for typical policies), but write
    // it from a thread anyway so a large one cannot block us.
    let body = serde_json::to_vec(plan)?;
    let plan_file = std::fs::File::from(plan_w);
    std::thread::spawn(move || {
        use std::io::Write;
        let mut f = plan_file;
        // A failed write shows up as a plan.read error from the helper (exit 7).
        f.write_all(&body).ok();
    });
    drop((plan_r, status_w, req_r, resp_w));
    Ok((child, Pipes { status: status_r.into(), requests: req_w.into(), responses: resp_r.into() }))
}
