//! The sandbox's filesystem view (mount_namespaces(7), pivot_root(2)): a fresh tmpfs root
//! holding only read-only binds of the interpreter, system libraries and the model, a private
//! size-capped /tmp, a fresh /proc for the new pid namespace and a minimal /dev. Files beside
//! the model, $HOME, /root, /run, /var and every other host path do not exist inside.
//! Assumes: runs as pid 1 of the new pid namespace, in a new mount namespace, before Landlock.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::plan::Plan;
use super::status::StepError;

/// Where the new root is assembled, inside our private mount namespace only.
const STAGE: &str = "/tmp";
const DEV_NODES: &[&str] = &["null", "zero", "urandom", "random"];

fn err(step: &str, e: Errno, what: impl Into<String>) -> StepError {
    StepError::new(step, e, what)
}

/// Step 5. Sources are opened (O_PATH) before the stage tmpfs covers /tmp, so a model that
/// lives under /tmp is still reachable, and binds go through /proc/self/fd so a path swapped
/// after the supervisor checked it cannot redirect a bind.
pub fn build_root(plan: &Plan) -> Result<(), StepError> {
    // Nothing we mount may propagate back to the host (MS_PRIVATE, recursively).
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| err("mounts.private", e, "make / private"))?;

    let mut sources: Vec<(OwnedFd, PathBuf)> = Vec::new();
    for p in &plan.ro_binds {
        match open_path(p) {
            Ok(fd) => sources.push((fd, p.clone())),
            Err(e) => return Err(err("mounts.open", e, p.display().to_string())),
        }
    }
    let model = open_path(&plan.model_src).map_err(|e| err("mounts.model", e, plan.model_src.display().to_string()))?;
    let devs = DEV_NODES
        .iter()
        .map(|n| open_path(Path::new("/dev").join(n).as_path()).map(|fd| (fd, *n)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("mounts.dev", e, "open /dev nodes"))?;

    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some("tmpfs"), STAGE, Some("tmpfs"), nosuid_nodev, Some("size=4m,nr_inodes=4096,mode=0755"))
        .map_err(|e| err("mounts.stage", e, "tmpfs for the new root"))?;
    let stage = Path::new(STAGE);

    // The private /tmp first: a runtime that lives under /tmp on the host (a checkout in
    // /tmp) is then bound read-only on top of it instead of being hidden by it.
    let tmp = stage.join("tmp");
    mkdir_p(&tmp)?;
    let opts = format!("size={},mode=1777", plan.tmp_size);
    mount(Some("tmpfs"), &tmp, Some("tmpfs"), nosuid_nodev | MsFlags::MS_NOEXEC, Some(opts.as_str()))
        .map_err(|e| err("mounts.tmp", e, "private /tmp"))?;

    for (fd, path) in &sources {
        bind_ro(fd, &stage.join(rel(path)), path)?;
    }
    for (link, target) in &plan.symlinks {
        let at = stage.join(rel(link));
        mkdir_p(at.parent().unwrap_or(stage))?;
        std::os::unix::fs::symlink(target, &at)
            .map_err(|e| err("mounts.symlink", errno_of(&e), at.display().to_string()))?;
    }
    bind_ro(&model, &stage.join(rel(&plan.model_dst)), &plan.model_dst)?;

    // /dev: a tmpfs with only the harmless nodes, bound from the host (mknod is not
    // possible in a user namespace, and binds keep it that way for the non-root path too).
    let dev = stage.join("dev");
    mkdir_p(&dev)?;
    mount(Some("tmpfs"), &dev, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("size=64k,mode=0755"))
        .map_err(|e| err("mounts.dev", e, "tmpfs /dev"))?;
    for (fd, name) in &devs {
        let at = dev.join(name);
        touch(&at)?;
        mount(Some(fd_path(fd).as_str()), &at, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| err("mounts.dev", e, at.display().to_string()))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(name)).map_err(|e| err("mounts.dev", errno_of(&e), name))?;
    }
    remount_ro(&dev, "/dev")?;

    let proc_ = stage.join("proc");
    mkdir_p(&proc_)?;
    mount(Some("proc"), &proc_, Some("proc"), nosuid_nodev | MsFlags::MS_NOEXEC, None::<&str>).map_err(|e| {
        err("mounts.proc", e, "fresh /proc for the new pid namespace (in a container: Docker needs --security-opt systempaths=unconfined)")
    })?;
    drop(sources);
    drop(devs);
    drop(model);

    pivot(stage)?;
    // The root tmpfs only holds mount points: read-only from here on.
    remount_ro(Path::new("/"), "/")?;
    Ok(())
}

/// pivot_root(".", ".") then detach the old root: the host tree is unreachable afterwards
/// (unlike chroot, which a process with CAP_SYS_CHROOT can leave).
fn pivot(stage: &Path) -> Result<(), StepError> {
    nix::unistd::chdir(stage).map_err(|e| err("mounts.pivot", e, "chdir to the new root"))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| err("mounts.pivot", e, "pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| err("mounts.pivot", e, "detach the old root"))?;
    nix::unistd::chdir("/").map_err(|e| err("mounts.pivot", e, "chdir /"))?;
    Ok(())
}

fn open_path(p: &Path) -> Result<OwnedFd, Errno> {
    let fd = open(p, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: open just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn rel(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap_or(p)
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

fn mkdir_p(p: &Path) -> Result<(), StepError> {
    std::fs::create_dir_all(p).map_err(|e| err("mounts.mkdir", errno_of(&e), p.display().to_string()))
}

fn touch(p: &Path) -> Result<(), StepError> {
    if let Some(parent) = p.parent() {
        mkdir_p(parent)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p)
        .map(drop)
        .map_err(|e| err("mounts.touch", errno_of(&e), p.display().to_string()))
}

/// Binds `fd` (a file or directory) read-only at `at` without following submounts.
fn bind_ro(fd: &OwnedFd, at: &Path, label: &Path) -> Result<(), StepError> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| err("mounts.stat", e, label.display().to_string()))?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => mkdir_p(at)?,
        libc::S_IFREG => touch(at)?,
        _ => {
            return Err(StepError::check(
                "mounts.bind",
                format!("{} is neither a file nor a directory", label.display()),
            ))
        }
    }
    mount(Some(fd_path(fd).as_str()), at, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| err("mounts.bind", e, label.display().to_string()))?;
    remount_ro(at, &label.display().to_string())
}

/// Makes a mount read-only, nosuid, nodev, keeping the flags the kernel locks on it (in a
/// user namespace a remount that drops a locked flag fails with EPERM).
fn remount_ro(at: &Path, label: &str) -> Result<(), StepError> {
    let sv = nix::sys::statvfs::statvfs(at).map_err(|e| err("mounts.statvfs", e, label.to_string()))?;
    use nix::sys::statvfs::FsFlags;
    let mut flags =
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let f = sv.flags();
    for (have, want) in [
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(have) {
            flags |= want;
        }
    }
    mount(None::<&str>, at, None::<&str>, flags, None::<&str>)
        .map_err(|e| err("mounts.remount_ro", e, label.to_string()))
}
