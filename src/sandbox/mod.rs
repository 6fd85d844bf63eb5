//! The sandbox helper: a fresh, single-threaded copy of our own binary that confines itself
//! step by step and then `execve`s the interpreter. The supervisor prepares everything (the
//! validated [`Plan`], compiled BPF, pipes) and never calls `unshare` or mounts itself.
//!
//! Failure of any step is sent as one JSON line `{step, errno, detail}` on the close-on-exec
//! status pipe ([`status`]); end-of-file on that pipe means `execve` succeeded.

pub mod caps;
pub mod cgroup;
pub mod fds;
pub mod landlock;
pub mod mounts;
pub mod namespaces;
pub mod plan;
pub mod rlimits;
pub mod seccomp;
pub mod status;
pub mod trace;

pub use plan::{Layer, Plan};

use status::StepError;

/// Entry point of `sandload __sandbox-helper`: runs the confinement order below and never
/// returns on success (the process becomes the interpreter).
///
/// The order, and why:
/// 1. **Sanitise** (H): parent-death signal, close every fd not on the allowlist
///    (`close_range`), `setsid` so no controlling tty remains (TIOCSTI injection,
///    CVE-2017-5226). First, so nothing inherited survives a later failure.
/// 2. **Cgroup** (H): join the per-run cgroup the supervisor made, while `/sys/fs/cgroup` is
///    still visible (through v1's `tasks`, which avoids an RCU grace period: see [`cgroup`]).
/// 3. **Namespaces** (H): mount, pid, net (only a down loopback), ipc, uts, cgroup; as a
///    non-root user a user namespace first, mapping only our own id.
/// 4. **Fork** (H → A): A is pid 1 of the new pid namespace, so the workload is not the
///    reaper; H reports A's host pid (the supervisor kills the whole namespace through it),
///    then only waits and passes A's exit status on.
/// 5. **Mounts** (A): private propagation, a fresh tmpfs root holding read-only binds of the
///    interpreter, system libraries and the model, a size-capped `/tmp`, a fresh `/proc`, a
///    minimal `/dev`; `pivot_root`, detach the old root. Before Landlock, which forbids mounts.
/// 6. **Identity** (A): as root, drop to the policy's unprivileged uid/gid; then a new user
///    namespace whose only mapping is that id, so every other namespace the workload lives in
///    is owned by a user namespace where it holds no capability.
/// 7. **Resource limits** (A): rlimits (lowering needs no privilege).
/// 8. **Capabilities** (A): lock securebits, clear the bounding set, then every other set;
///    read back and verify.
/// 9. **no_new_privs** (A); abort if it does not read back as set.
/// 10. **Landlock** (A): read-only runtime and model, write only `/tmp` and `/dev/null`,
///     execute only the interpreter and its ELF loader, TCP denied, abstract-socket and
///     signal scopes; refuse if the required ABI is not enforced.
/// 11. **Fork** (A → B): B is the workload; A stays as a minimal reaper.
/// 12. **Seccomp phase 1** (B), last: the kill-by-default allowlist.
/// 13. **execve** (B) the interpreter by absolute path with the allowlisted environment.
pub fn helper_main(inherited: &[i32]) -> i32 {
    let started = trace::now_ns();
    // Step 0: move the supervisor's fds to the numbers the rest of the sandbox expects.
    // They were opened with numbers >= 10, so no dup2 here overwrites another.
    if inherited.len() != 4 || fds::place(inherited).is_err() {
        return 70;
    }
    let mut report = match status::Reporter::from_fd(fds::CHILD_STATUS) {
        Ok(r) => r,
        // No status pipe: we were not started by the supervisor. Nothing to report to.
        Err(_) => return 70,
    };
    match run_steps(&mut report, started) {
        Ok(never) => match never {},
        Err(e) => {
            report.send(&e);
            70
        }
    }
}

fn run_steps(report: &mut status::Reporter, started: u128) -> Result<std::convert::Infallible, StepError> {
    let plan = plan::read_from_fd(fds::CHILD_PLAN)?;
    trace::enable(plan.env.iter().any(|(k, _)| k == trace::ENV));
    trace::mark_at("helper.start", Some(started));
    trace::mark("plan.read");
    fds::sanitise(&plan)?; // 1
    trace::mark("sanitise");
    if let Some(procs) = &plan.cgroup_procs {
        cgroup::join(procs)?; // 2
        trace::mark("cgroup.join");
    }
    namespaces::unshare_all(&plan)?; // 3
    trace::mark("namespaces.unshare");
    let init = namespaces::fork_init()?; // 4
    if let namespaces::Forked::Parent(pid) = init {
        report.announce_init(pid)?;
        report.close();
        // H only waits from here on: dropping its copies of the pipes means the supervisor
        // sees end-of-file as soon as the sandbox's own copies are gone.
        fds::close_all_for_reaper();
        let code = namespaces::wait_and_relay(pid);
        std::process::exit(code);
    }
    trace::mark("init.forked");
    mounts::build_root(&plan)?; // 5
    trace::mark("mounts");
    namespaces::become_sandbox_identity(&plan)?; // 6
    trace::mark("identity");
    rlimits::apply(&plan.rlimits)?; // 7
    caps::drop_all()?; // 8
    caps::set_no_new_privs()?; // 9
    trace::mark("rlimits.caps.nnp");
    if plan.enabled(Layer::Landlock) {
        landlock::restrict(&plan.landlock)?; // 10
        trace::mark("landlock");
    }
    if let namespaces::Forked::Parent(child) = namespaces::fork_workload()? {
        // 11: A keeps only the reaper role; its copies of the pipes must go, or the
        // supervisor would not see end-of-file when the workload exits.
        report.close();
        fds::close_all_for_reaper();
        std::process::exit(namespaces::reap_until(child));
    }
    trace::mark("workload.forked");
    if plan.enabled(Layer::Seccomp) {
        seccomp::install(&plan.seccomp_phase1)?; // 12
        trace::mark("seccomp");
    }
    Err(fds::exec_interpreter(&plan)) // 13
}
