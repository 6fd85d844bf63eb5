//! Landlock (landlock(7)): after the mounts, so paths are those of the new root. Read-only
//! runtime and model, writes only in /tmp and /dev/null, execute only the interpreter and its
//! ELF loader (without this, measured: `os.system` still starts a shell when seccomp is off),
//! TCP bind/connect denied (ABI >= 4), abstract unix sockets and signals scoped to the
//! sandbox (ABI >= 6). Fails closed below the required ABI.

use std::path::Path;

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use super::plan::LandlockPlan;
use super::status::StepError;

/// The running kernel's Landlock ABI (0 when Landlock is missing or disabled).
pub fn kernel_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only returns
    // the ABI version; no memory is read or written.
    let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32) };
    v.max(0) as i32
}

fn fail(what: impl Into<String>) -> StepError {
    StepError::check("landlock", what)
}

pub fn restrict(plan: &LandlockPlan) -> Result<(), StepError> {
    let have = kernel_abi();
    if have < plan.min_abi as i32 {
        return Err(fail(format!(
            "the kernel offers Landlock ABI {have}, the policy requires {} (ABI 4: TCP rules, Linux 6.7; ABI 6: \
             abstract-socket and signal scoping, Linux 6.12). Upgrade the kernel, enable Landlock (lsm=...,landlock), \
             or accept less with --landlock-min-abi {have}",
            plan.min_abi
        )));
    }
    let abi = ABI::from(have.min(7));
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| fail(format!("filesystem rights: {e}")))?;
    let ruleset = if have >= 4 {
        ruleset
            .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
            .map_err(|e| fail(format!("network rights: {e}")))?
    } else {
        ruleset
    };
    let ruleset = if have >= 6 {
        ruleset.scope(Scope::AbstractUnixSocket | Scope::Signal).map_err(|e| fail(format!("scopes: {e}")))?
    } else {
        ruleset
    };
    let mut created = ruleset.create().map_err(|e| fail(format!("create: {e}")))?;

    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let write_dir = AccessFs::from_all(abi) & !AccessFs::Execute;
    for p in &plan.read {
        created = add(created, p, read, abi)?;
    }
    for p in &plan.exec {
        created = add(created, p, AccessFs::ReadFile | AccessFs::Execute, abi)?;
    }
    for p in &plan.write_dirs {
        created = add(created, p, write_dir, abi)?;
    }
    for p in &plan.rw_files {
        created = add(created, p, AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate, abi)?;
    }
    let status = created.restrict_self().map_err(|e| fail(format!("restrict_self: {e}")))?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(fail(format!("ruleset not fully enforced: {:?}", status.ruleset)));
    }
    Ok(())
}

fn add(
    created: landlock::RulesetCreated,
    path: &Path,
    access: BitFlags<AccessFs>,
    abi: ABI,
) -> Result<landlock::RulesetCreated, StepError> {
    let fd = match PathFd::new(path) {
        Ok(fd) => fd,
        // Optional paths (a missing /usr/lib64) were already skipped by the supervisor, so
        // every path must exist in the new root.
        Err(e) => return Err(fail(format!("open {}: {e}", path.display()))),
    };
    let is_dir = std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false);
    let access = if is_dir { access } else { access & AccessFs::from_file(abi) };
    created
        .add_rule(PathBeneath::new(fd, access & AccessFs::from_all(abi)))
        .map_err(|e| fail(format!("rule for {}: {e}", path.display())))
}
