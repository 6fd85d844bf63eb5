//! `sandload __bench-exec`: the confinement cost alone. The same policy, plan, cgroup and
//! helper as `run`, around the interpreter with arbitrary arguments (`-c pass`), no broker.

use std::io::Read;
use std::path::PathBuf;

use crate::exit::Failure;
use crate::policy::{parse_size, Loaded};

pub async fn exec_only(python: Option<PathBuf>, args: Vec<String>) -> anyhow::Result<i32> {
    let policy = Loaded::load(None).map_err(|e| Failure::usage(e.to_string()))?;
    let runtime = crate::python::resolve(python.as_deref())?;
    let memory = parse_size(&policy.policy.limits.memory).map_err(Failure::usage)?;
    let max_procs = policy.policy.limits.max_procs;
    let name = format!("sandload-bench-{}", std::process::id());
    let cg = super::cgroup::RunCgroup::create(&name, memory, max_procs);
    // The interpreter file stands in for the model: some file must be bound at /model.
    let model_inside = PathBuf::from("/model/interpreter");
    let mut plan = super::spawn::build_plan(&super::spawn::Settings {
        policy: &policy,
        runtime: &runtime,
        model_host: &runtime.canonical,
        model_inside: &model_inside,
        safe_mode: true,
        disabled: &[],
        landlock_min_abi: policy.policy.landlock.min_abi,
        memory,
        max_procs,
        cpu_seconds: 60,
        data_rlimit: cg.is_none(),
        cgroup_procs: cg.as_ref().map(|c| c.procs_files()),
    })?;
    plan.argv.truncate(1);
    plan.argv.extend(args);
    let (mut child, pipes) = super::spawn::spawn(&plan)?;
    let mut out = child.stdout.take();
    let relay = tokio::spawn(async move {
        if let Some(o) = out.as_mut() {
            // Benchmark output only; a failed relay does not change the measurement.
            tokio::io::copy(o, &mut tokio::io::stdout()).await.ok();
        }
    });
    let mut status = Vec::new();
    let mut st = pipes.status;
    tokio::task::spawn_blocking(move || st.by_ref().take(64 << 10).read_to_end(&mut status).map(|_| status))
        .await??
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .try_for_each(|l| match serde_json::from_slice(l) {
            Ok(crate::sandbox::status::Message::Failed(e)) => {
                Err(Failure::new(crate::exit::Exit::SandboxSetup, e.to_string()))
            }
            _ => Ok(()),
        })?;
    let st = child.wait().await?;
    relay.await?;
    drop(cg);
    Ok(st.code().unwrap_or(70))
}
