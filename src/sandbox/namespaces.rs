//! Namespaces, the two forks, and the sandbox identity (user_namespaces(7), pid_namespaces(7)).
//! Assumes a single-threaded process: unshare(CLONE_NEWUSER) fails in a threaded one, and
//! fork in a threaded one could copy a held lock.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use super::plan::{Layer, Plan};
use super::status::StepError;

pub enum Forked {
    Parent(i32),
    Child,
}

/// Step 3: every namespace but (for root) the user namespace, which step 6 adds once the
/// mounts are made (as root we must bind paths only root can reach, e.g. a 0700 pyenv home).
pub fn unshare_all(plan: &Plan) -> Result<(), StepError> {
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWCGROUP;
    if plan.enabled(Layer::Netns) {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let root = Uid::effective().is_root();
    if !root {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    let (uid, gid) = (Uid::effective(), Gid::effective());
    nix::sched::unshare(flags)
        .map_err(|e| StepError::new("namespaces.unshare", e, format!("unshare({flags:?}); {}", hint_unshare(e))))?;
    if !root {
        map_self(0, uid.as_raw(), 0, gid.as_raw())?;
    }
    nix::unistd::sethostname("sandload").map_err(|e| {
        StepError::new(
            "namespaces.hostname",
            e,
            "sethostname in the new uts namespace; podman's default seccomp profile blocks it: run with \
             --security-opt seccomp=policies/container-seccomp.json",
        )
    })?;
    Ok(())
}

fn hint_unshare(e: Errno) -> &'static str {
    match e {
        Errno::EPERM => "user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone, Ubuntu's AppArmor restriction) or a container's seccomp profile blocks unshare; run `sandload doctor`",
        Errno::ENOSPC => "the namespace count limit is reached (/proc/sys/user/max_*_namespaces)",
        Errno::EINVAL => "the kernel lacks one of the namespace types",
        _ => "see `sandload doctor`",
    }
}

/// Writes uid/gid maps for our own process: only our own ids, which needs no capability in
/// the parent namespace; `setgroups=deny` first, as the kernel demands for gid_map.
fn map_self(inner_uid: u32, outer_uid: u32, inner_gid: u32, outer_gid: u32) -> Result<(), StepError> {
    let w = |path: &str, data: String| {
        std::fs::write(path, data).map_err(|e| {
            StepError::new("namespaces.idmap", Errno::from_raw(e.raw_os_error().unwrap_or(0)), path.to_string())
        })
    };
    w("/proc/self/setgroups", "deny".into())?;
    w("/proc/self/uid_map", format!("{inner_uid} {outer_uid} 1\n"))?;
    w("/proc/self/gid_map", format!("{inner_gid} {outer_gid} 1\n"))?;
    Ok(())
}

/// Step 4: the first process in the new pid namespace becomes its init.
pub fn fork_init() -> Result<Forked, StepError> {
    // SAFETY: the helper is single-threaded (it never starts a runtime), so the child may run
    // arbitrary code after fork.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => Ok(Forked::Parent(child.as_raw())),
        Ok(ForkResult::Child) => {
            // If H dies (the supervisor killed it), the whole namespace goes with us.
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(|e| StepError::new("init.pdeathsig", e, "PR_SET_PDEATHSIG"))?;
            Ok(Forked::Child)
        }
        Err(e) => Err(StepError::new("namespaces.fork_init", e, "fork into the new pid namespace")),
    }
}

/// H's last job: wait for init and exit with its status (signals as 128+n, like a shell).
pub fn wait_and_relay(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => return 70,
        }
    }
}

/// Step 6: the unprivileged identity and the inner user namespace.
pub fn become_sandbox_identity(plan: &Plan) -> Result<(), StepError> {
    if Uid::effective().is_root() && !in_user_namespace() {
        let (uid, gid) = (Uid::from_raw(plan.uid), Gid::from_raw(plan.gid));
        nix::unistd::setgroups(&[]).map_err(|e| StepError::new("identity.setgroups", e, "clear groups"))?;
        nix::unistd::setresgid(gid, gid, gid).map_err(|e| StepError::new("identity.setresgid", e, gid.to_string()))?;
        nix::unistd::setresuid(uid, uid, uid).map_err(|e| StepError::new("identity.setresuid", e, uid.to_string()))?;
        if Uid::effective().is_root() || nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err(StepError::check("identity.verify", "still able to become root after dropping"));
        }
    }
    // A credential change resets the dumpable flag, which makes /proc/self/* root-owned and
    // the id maps unwritable; set it for the map writes, clear it again below.
    nix::sys::prctl::set_dumpable(true).map_err(|e| StepError::new("identity.dumpable", e, "set"))?;
    let (uid, gid) = (Uid::effective().as_raw(), Gid::effective().as_raw());
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
        .map_err(|e| StepError::new("identity.userns", e, format!("unshare(CLONE_NEWUSER); {}", hint_unshare(e))))?;
    map_self(plan.uid, uid, plan.gid, gid)?;
    // Not dumpable: a compromised workload cannot open /proc/1/mem of the reaper.
    nix::sys::prctl::set_dumpable(false).map_err(|e| StepError::new("identity.dumpable", e, "clear"))?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| StepError::new("identity.pdeathsig", e, "re-arm after the credential change"))?;
    Ok(())
}

fn in_user_namespace() -> bool {
    // The initial namespace maps every id to itself: "0 0 4294967295".
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(true)
}

/// Step 11: the workload.
pub fn fork_workload() -> Result<Forked, StepError> {
    // SAFETY: single-threaded process, as above.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => Ok(Forked::Parent(child.as_raw())),
        Ok(ForkResult::Child) => {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(|e| StepError::new("workload.pdeathsig", e, "PR_SET_PDEATHSIG"))?;
            if nix::unistd::getppid().as_raw() != 1 {
                return Err(StepError::check("workload.parent", "the namespace init died before us"));
            }
            Ok(Forked::Child)
        }
        Err(e) => Err(StepError::new("namespaces.fork_workload", e, "fork the workload")),
    }
}

/// The init's loop: reap every child (orphans are re-parented to us) until the workload ends,
/// then exit with its status; the kernel kills what is left when init exits.
pub fn reap_until(workload: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == workload => return c,
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == workload => return 128 + s as i32,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return 70,
        }
    }
}
