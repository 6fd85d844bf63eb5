//! `sandload run`: check everything on the host side, start the confined child, talk to it
//! over the broker, and turn what happened into one verdict and exit code.

mod audit;
pub mod bench;
pub mod cgroup;
pub mod model;
pub mod report;
pub mod session;
pub mod spawn;
mod verdict;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;

use crate::broker::Limits;
use crate::cli::{RunArgs, SafeMode};
use crate::exit::{Exit, Failure};
use crate::policy::{parse_size, Loaded};
use crate::tensors::output::{JsonSink, NpySink, NpzSink, Preview, Sink};
use crate::text::{escape, escape_bytes, Tail};

/// Values kept per output for the summary; `--json` keeps up to this many for full data.
const PREVIEW_SUMMARY: usize = 8;
const PREVIEW_JSON: usize = 1 << 16;
/// How long a child may take to exit after SHUTDOWN before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(3);

pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    let policy = Loaded::load(args.policy.as_deref()).map_err(|e| Failure::usage(e.to_string()))?;
    let is_root = nix::unistd::Uid::effective().is_root();
    let model = model::check(&args.model, is_root.then_some(policy.policy.identity.uid))?;
    let runtime = crate::python::resolve(args.python.as_deref())?;
    let inputs = crate::tensors::input::load_all(&args.inputs)?;
    let sink = open_sink(args.output.as_deref())?;
    let memory = parse_size(args.memory.as_deref().unwrap_or(&policy.policy.limits.memory)).map_err(Failure::usage)?;
    let max_output = parse_size(&args.max_output_bytes).map_err(Failure::usage)?;
    let tail_cap = parse_size(&policy.policy.limits.output_tail).map_err(Failure::usage)? as usize;
    let max_procs = args.max_procs.unwrap_or(policy.policy.limits.max_procs);
    let ncpu = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let cpu_seconds = match policy.policy.limits.cpu_seconds {
        0 => args.timeout.saturating_mul(ncpu).max(1),
        n => n,
    };

    let scan = (!args.no_scan).then(|| crate::scan::scan_model(&model.host));
    if let Some(s) = &scan {
        for f in &s.findings {
            eprintln!("sandload: scan: {:?} {}: {}", f.severity, escape(&f.location), escape(&f.message));
        }
    }
    let mut loosened = Vec::new();
    for l in &args.disabled_layers {
        eprintln!("sandload: WARNING: the {l:?} layer is DISABLED (--unsafe-disable-layer); this run is less confined");
        loosened.push(format!("layer {l:?} disabled"));
    }
    let min_abi = args.landlock_min_abi.unwrap_or(policy.policy.landlock.min_abi);
    if min_abi < policy.policy.landlock.min_abi {
        loosened.push(format!("Landlock ABI {min_abi} accepted (policy requires {})", policy.policy.landlock.min_abi));
    }

    let run_name = format!("sandload-{}-{}", std::process::id(), started.elapsed().as_nanos());
    let cg = cgroup::RunCgroup::create(&run_name, memory, max_procs);
    let plan = spawn::build_plan(&spawn::Settings {
        policy: &policy,
        runtime: &runtime,
        model_host: &model.host,
        model_inside: &model.inside,
        safe_mode: args.safe_mode == SafeMode::On,
        disabled: &args.disabled_layers,
        landlock_min_abi: min_abi,
        memory,
        max_procs,
        cpu_seconds,
        data_rlimit: cg.is_none(),
        cgroup_procs: cg.as_ref().map(|c| c.procs_files()),
    })
    .context("building the sandbox plan")?;

    let (mut child, pipes) = spawn::spawn(&plan)?;
    let stdout = pump(child.stdout.take(), tail_cap);
    let stderr = pump(child.stderr.take(), tail_cap);
    let init_pid = Arc::new(AtomicI32::new(0));
    let verified = Arc::new(Mutex::new(None));
    let workload_pid = Arc::new(AtomicI32::new(0));
    let job = session::Job {
        inputs,
        sink,
        preview: Preview::new(if args.json { PREVIEW_JSON } else { PREVIEW_SUMMARY }),
        limits: Limits::with_max_payload(max_output),
        started,
        init_pid: init_pid.clone(),
        on_ready: verify_later(init_pid.clone(), workload_pid.clone(), verified.clone()),
    };
    let mut conversation = tokio::task::spawn_blocking(move || session::run(pipes, job));
    let deadline = tokio::time::sleep(Duration::from_secs(args.timeout));
    tokio::pin!(deadline);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stop: Option<Exit> = None;
    let done = tokio::select! {
        r = &mut conversation => Some(r),
        _ = &mut deadline => { stop = Some(Exit::Timeout); None }
        _ = tokio::signal::ctrl_c() => { stop = Some(Exit::Interrupted); None }
        _ = sigterm.recv() => { stop = Some(Exit::Interrupted); None }
    };
    if stop.is_some() {
        kill_tree(&init_pid, &mut child);
    }
    let (outcome, seen, job) = match done {
        Some(r) => r.context("broker thread")?,
        // Killing the tree closed every pipe, so the conversation ends promptly.
        None => conversation.await.context("broker thread")?,
    };
    let status = match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(s) => s?,
        Err(_) => {
            kill_tree(&init_pid, &mut child);
            child.wait().await?
        }
    };
    // Any process left in the namespace dies with its init; make sure of it.
    kill_tree(&init_pid, &mut child);
    let (out_tail, err_tail) = (stdout.await?, stderr.await?);

    let mut v = verdict::decide(&verdict::Facts {
        outcome: &outcome,
        status,
        stop,
        oom: cg.as_ref().is_some_and(|c| c.oom_killed()),
        pids_limited: cg.as_ref().is_some_and(|c| c.pids_limited()),
    });
    if v.signal.as_deref() == Some("SIGSYS") {
        if let Some(name) = audit::seccomp_kill_syscall(workload_pid.load(Ordering::SeqCst)) {
            v.message = format!("{} (the kernel logged `{name}`)", v.message);
            v.syscall = Some(name);
        }
    }
    let rep = report::Report {
        sandload_version: env!("CARGO_PKG_VERSION"),
        model: model.host.display().to_string(),
        verdict: v.exit,
        exit_code: v.exit.code(),
        message: v.message.clone(),
        interpreter: format!("{} ({})", runtime.exe.display(), runtime.source),
        runtime: seen.ready.clone(),
        signature: seen.signature.clone(),
        outputs: seen.outputs.clone(),
        timings: report::Timings {
            sandbox_setup: seen.t_exec,
            interpreter_ready: seen.t_ready,
            model_loaded: seen.t_loaded,
            predict_done: seen.t_result,
            total: started.elapsed().as_secs_f64(),
            child_import: seen.ready.as_ref().map(|r| r.import_seconds),
            child_load: seen.signature.as_ref().map(|s| s.load_seconds),
        },
        sandbox: report::SandboxReport {
            layers: layers(&args.disabled_layers, &plan, cg.as_ref().map(|c| c.mechanism)),
            disabled_layers: args.disabled_layers.iter().map(|l| format!("{l:?}").to_lowercase()).collect(),
            loosened,
            landlock_abi: crate::sandbox::landlock::kernel_abi(),
            seccomp_phase1_syscalls: policy.phase1.permitted_names().len(),
            seccomp_phase2_syscalls: policy.phase2.permitted_names().len(),
            memory_limit: memory,
            memory_mechanism: cg.as_ref().map_or("RLIMIT_DATA".to_string(), |c| c.mechanism.to_string()),
            max_procs,
            policy: policy.origin.clone(),
            verified: verified.lock().ok().and_then(|g| g.clone()),
            peak_memory: cg.as_ref().and_then(|c| c.peak_memory()),
            supervisor_peak_rss: own_peak_rss(),
        },
        child: report::ChildReport {
            exit_status: status.code(),
            signal: v.signal.clone(),
            seccomp_syscall: v.syscall.clone(),
            stdout_tail: escape_bytes(&out_tail.contents()),
            stdout_bytes: out_tail.total,
            stderr_tail: escape_bytes(&err_tail.contents()),
            stderr_bytes: err_tail.total,
        },
        events: seen.events.clone(),
        events_dropped: seen.events_dropped,
        scan: scan.as_ref().and_then(|s| serde_json::to_value(s).ok()),
    };
    drop(cg);
    emit(&args, &rep, &job.preview)?;
    Ok(v.exit.code())
}

fn emit(args: &RunArgs, rep: &report::Report, preview: &Preview) -> anyhow::Result<()> {
    if let Some(path) = &args.report {
        let body = serde_json::to_vec_pretty(rep)?;
        std::fs::write(path, body).with_context(|| format!("writing the report {}", path.display()))?;
    }
    let failed = rep.verdict != Exit::Ok;
    if (failed || args.verbose) && (rep.child.stderr_bytes > 0 || rep.child.stdout_bytes > 0) {
        eprintln!(
            "sandload: --- child output (last {} of {} bytes) ---",
            rep.child.stderr_tail.len(),
            rep.child.stderr_bytes
        );
        eprint!("{}", rep.child.stdout_tail);
        eprint!("{}", rep.child.stderr_tail);
        eprintln!("sandload: --- end of child output ---");
    }
    eprint!("{}", report::events_text(rep));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report::json_result(rep, &preview.tensors, true))?);
    } else if !failed {
        print!("{}", report::summary(rep, if args.output.is_some() { &[] } else { &preview.tensors }));
        if let Some(o) = &args.output {
            println!("outputs written to {}", o.display());
        }
    }
    if failed {
        eprintln!("sandload: {}", escape(&rep.message));
    }
    Ok(())
}

fn layers(disabled: &[crate::sandbox::Layer], plan: &crate::sandbox::Plan, cg: Option<&str>) -> Vec<String> {
    use crate::sandbox::Layer;
    let mut v: Vec<String> = [
        "user namespace",
        "pid namespace",
        "mount namespace (fresh read-only root)",
        "ipc namespace",
        "uts namespace",
        "cgroup namespace",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !disabled.contains(&Layer::Netns) {
        v.push("net namespace (no interfaces up)".into());
    }
    v.push(format!("unprivileged uid {} / gid {}", plan.uid, plan.gid));
    v.extend(["all capabilities dropped, securebits locked".to_string(), "no_new_privs".to_string()]);
    if !disabled.contains(&Layer::Landlock) {
        v.push(format!("landlock (ABI >= {})", plan.landlock.min_abi));
    }
    if !disabled.contains(&Layer::Seccomp) {
        v.push("seccomp phase 1 (interpreter start-up)".into());
        v.push("seccomp phase 2 (model code, TSYNC)".into());
    }
    v.push(format!("rlimits{}", cg.map(|c| format!(" + {c} memory/pids")).unwrap_or_default()));
    v
}

fn open_sink(path: Option<&std::path::Path>) -> Result<Option<Box<dyn Sink + Send>>, Failure> {
    let Some(p) = path else { return Ok(None) };
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let fail = |e: std::io::Error| Failure::usage(format!("output {}: {e}", p.display()));
    Ok(Some(match ext.as_str() {
        "npy" => Box::new(NpySink::create(p).map_err(fail)?),
        "npz" => Box::new(NpzSink::create(p).map_err(fail)?),
        "json" => Box::new(JsonSink::create(p).map_err(fail)?),
        _ => return Err(Failure::usage(format!("output {}: use .npy, .npz or .json", p.display()))),
    }))
}

/// SIGKILL to the namespace's init kills every process in it (pid_namespaces(7)); the helper
/// outside the namespace is killed directly.
pub fn kill_tree(init: &AtomicI32, child: &mut tokio::process::Child) {
    let pid = init.load(Ordering::SeqCst);
    if pid > 0 && kill(Pid::from_raw(pid), Signal::SIGKILL).is_err() {
        // ESRCH: already gone.
    }
    if child.start_kill().is_err() {
        // Already exited.
    }
}

/// Reads a child stream to its end, keeping only a bounded tail.
pub fn pump<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    r: Option<R>,
    cap: usize,
) -> tokio::task::JoinHandle<Tail> {
    tokio::spawn(async move {
        let mut tail = Tail::new(cap);
        if let Some(mut r) = r {
            let mut buf = vec![0u8; 64 << 10];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                tail.push(&buf[..n]);
            }
        }
        tail
    })
}

/// Once the interpreter is up, read the workload's confinement back from the host's /proc.
fn verify_later(
    init: Arc<AtomicI32>,
    workload_pid: Arc<AtomicI32>,
    out: Arc<Mutex<Option<serde_json::Value>>>,
) -> Box<dyn FnOnce() + Send> {
    Box::new(move || {
        let pid = init.load(Ordering::SeqCst);
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let Some(workload) = children.split_whitespace().next() else { return };
        workload_pid.store(workload.parse().unwrap_or(0), Ordering::SeqCst);
        let status = std::fs::read_to_string(format!("/proc/{workload}/status")).unwrap_or_default();
        let mut v = serde_json::Map::new();
        for key in
            ["Uid", "Gid", "NoNewPrivs", "Seccomp", "Seccomp_filters", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        {
            if let Some(line) = status.lines().find(|l| l.starts_with(&format!("{key}:"))) {
                v.insert(key.into(), line[key.len() + 1..].trim().into());
            }
        }
        if let Ok(mut g) = out.lock() {
            *g = Some(serde_json::Value::Object(v));
        }
    })
}

/// VmHWM of this process, from /proc/self/status.
fn own_peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
