//! Per-run cgroups for the memory and process limits. Tried in order: a cgroup v2 subtree we
//! can write with the memory and pids controllers enabled (systemd `Delegate=yes`, many
//! containers); cgroup v1 memory and pids hierarchies we can write (hybrid hosts, as root);
//! otherwise `None`, and the caller falls back to RLIMIT_DATA / RLIMIT_NPROC and says so.

use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct RunCgroup {
    pub mechanism: &'static str,
    dirs: Vec<PathBuf>,
    memory_dir: PathBuf,
}

impl RunCgroup {
    pub fn create(name: &str, memory: u64, max_procs: u64) -> Option<RunCgroup> {
        v2(name, memory, max_procs).or_else(|| v1(name, memory, max_procs))
    }

    /// The `cgroup.procs` files of the run's cgroup(s). The helper joins them itself and, on
    /// cgroup v1, through the sibling `tasks` file instead (see `sandbox::cgroup`: it avoids
    /// an RCU grace period per run and is the same move for its single thread).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Whether the kernel's OOM killer acted inside this cgroup.
    pub fn oom_killed(&self) -> bool {
        let read = |f: &str| std::fs::read_to_string(self.memory_dir.join(f)).unwrap_or_default();
        let count = |text: &str, key: &str| {
            text.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse::<u64>().ok())).unwrap_or(0)
        };
        if self.mechanism.starts_with("cgroup v2") {
            count(&read("memory.events"), "oom_kill ") > 0
        } else {
            count(&read("memory.oom_control"), "oom_kill ") > 0
        }
    }

    /// Whether a fork or thread creation was refused by pids.max (pids.events "max N").
    pub fn pids_limited(&self) -> bool {
        self.dirs.iter().any(|d| {
            std::fs::read_to_string(d.join("pids.events"))
                .unwrap_or_default()
                .lines()
                .any(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse::<u64>().ok()).unwrap_or(0) > 0)
        })
    }

    pub fn peak_memory(&self) -> Option<u64> {
        ["memory.peak", "memory.max_usage_in_bytes"]
            .iter()
            .find_map(|f| std::fs::read_to_string(self.memory_dir.join(f)).ok()?.trim().parse().ok())
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            // Empty once every process in it was reaped; if one is not (yet), the directory
            // stays as an empty cgroup, which is harmless.
            std::fs::remove_dir(d).ok();
        }
    }
}

fn v2(name: &str, memory: u64, max_procs: u64) -> Option<RunCgroup> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let root = Path::new("/sys/fs/cgroup");
    if !root.join("cgroup.controllers").exists() {
        return None;
    }
    let mut parent = root.join(rel.trim_start_matches('/'));
    // Already moved into our leaf by an earlier sandbox (serve starts many).
    if parent.ends_with("supervisor") {
        parent.pop();
    }
    let has = |dir: &Path, file: &str| -> bool {
        let s = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        s.split_whitespace().any(|c| c == "memory") && s.split_whitespace().any(|c| c == "pids")
    };
    if !has(&parent, "cgroup.subtree_control") {
        // A delegated subtree (systemd Delegate=yes) whose controllers are available but not
        // enabled for children. The "no internal processes" rule means we first move
        // ourselves into a leaf, then enable memory and pids for our siblings.
        if !has(&parent, "cgroup.controllers") {
            return None;
        }
        let leaf = parent.join("supervisor");
        if std::fs::create_dir(&leaf).is_err() && !leaf.is_dir() {
            return None;
        }
        std::fs::write(leaf.join("cgroup.procs"), std::process::id().to_string()).ok()?;
        std::fs::write(parent.join("cgroup.subtree_control"), "+memory +pids").ok()?;
    }
    let dir = parent.join(name);
    std::fs::create_dir(&dir).ok()?;
    let cg = RunCgroup { mechanism: "cgroup v2", dirs: vec![dir.clone()], memory_dir: dir.clone() };
    // No swap: it would let the child exceed the limit (absent without swap accounting).
    if dir.join("memory.swap.max").exists() && std::fs::write(dir.join("memory.swap.max"), "0").is_err() {
        return None;
    }
    let ok = std::fs::write(dir.join("memory.max"), memory.to_string()).is_ok()
        && std::fs::write(dir.join("pids.max"), max_procs.to_string()).is_ok();
    ok.then_some(cg)
}

/// This process's cgroup in the v1 hierarchy of `controller` (from /proc/self/cgroup), so the
/// run's cgroup nests under ours and every limit above us still applies.
fn v1_own(controller: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrls.split(',').any(|c| c == controller).then(|| path.trim_start_matches('/').to_string())
    })?;
    Some(Path::new("/sys/fs/cgroup").join(controller).join(rel))
}

fn v1(name: &str, memory: u64, max_procs: u64) -> Option<RunCgroup> {
    let (mem, pids) = (v1_own("memory")?, v1_own("pids")?);
    let (md, pd) = (mem.join(name), pids.join(name));
    std::fs::create_dir(&md).ok()?;
    let mut cg = RunCgroup { mechanism: "cgroup v1", dirs: vec![md.clone()], memory_dir: md.clone() };
    std::fs::create_dir(&pd).ok()?;
    cg.dirs.push(pd.clone());
    let ok = std::fs::write(md.join("memory.limit_in_bytes"), memory.to_string()).is_ok()
        && std::fs::write(pd.join("pids.max"), max_procs.to_string()).is_ok();
    // Swap would let the child exceed the limit; cap memory+swap too where the kernel has it.
    if md.join("memory.memsw.limit_in_bytes").exists()
        && std::fs::write(md.join("memory.memsw.limit_in_bytes"), memory.to_string()).is_err()
    {
        return None;
    }
    ok.then_some(cg)
}
