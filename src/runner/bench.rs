//! `sandload __bench-exec`: the confinement cost alone. The same policy, plan, cgroup and
//! helper as `run`, around the interpreter with arbitrary arguments (`-c pass`), no broker.
//! With `SANDLOAD_TRACE` set, the supervisor and every helper step print monotonic
//! timestamps to stderr (`sandload-trace PID STEP NS`), see `crate::sandbox::trace`.

use std::io::Read;
use std::path::PathBuf;

use crate::exit::Failure;
use crate::policy::{parse_size, Loaded};
use crate::sandbox::trace;

pub async fn exec_only(python: Option<PathBuf>, args: Vec<String>) -> anyhow::Result<i32> {
    let tracing = std::env::var_os(trace::ENV).is_some();
    trace::enable(tracing);
    trace::mark("supervisor.start");
    let policy = Loaded::load(None).map_err(|e| Failure::usage(e.to_string()))?;
    let runtime = crate::python::resolve(python.as_deref())?;
    let memory = parse_size(&policy.policy.limits.memory).map_err(Failure::usage)?;
    let max_procs = policy.policy.limits.max_procs;
    trace::mark("supervisor.policy");
    let name = format!("sandload-bench-{}", std::process::id());
    let cg = super::cgroup::RunCgroup::create(&name, memory, max_procs);
    trace::mark("supervisor.cgroup");
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
    if tracing {
        plan.env.push((trace::ENV.into(), "1".into()));
    }
    trace::mark("supervisor.plan");
    let (mut child, pipes) = super::spawn::spawn(&plan)?;
    trace::mark("supervisor.spawned");
    let relay_out = relay(child.stdout.take(), tokio::io::stdout());
    let relay_err = relay(child.stderr.take(), tokio::io::stderr());
    let mut status = Vec::new();
    let mut st = pipes.status;
    let status =
        tokio::task::spawn_blocking(move || st.by_ref().take(64 << 10).read_to_end(&mut status).map(|_| status))
            .await??;
    trace::mark("supervisor.status_eof");
    status.split(|b| *b == b'\n').filter(|l| !l.is_empty()).try_for_each(|l| match serde_json::from_slice(l) {
        Ok(crate::sandbox::status::Message::Failed(e)) => {
            Err(Failure::new(crate::exit::Exit::SandboxSetup, e.to_string()))
        }
        _ => Ok(()),
    })?;
    let st = child.wait().await?;
    trace::mark("supervisor.child_exited");
    relay_out.await?;
    relay_err.await?;
    drop(cg);
    trace::mark("supervisor.cgroup_removed");
    Ok(st.code().unwrap_or(70))
}

/// Copies one of the child's streams to ours (benchmark output only; a failed relay does not
/// change the measurement). Draining stderr also keeps a chatty child from blocking on it.
fn relay<R, W>(from: Option<R>, mut to: W) -> tokio::task::JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Some(mut f) = from {
            if tokio::io::copy(&mut f, &mut to).await.is_err() {}
        }
    })
}
