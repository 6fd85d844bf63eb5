//! `sandload serve`: each model loaded once in its own confined sandbox worker(s), answering
//! the Open Inference Protocol V2 over HTTP/1.1, so Triton/KServe clients work unchanged.
//! Runs as a systemd `Type=notify` service (READY/STOPPING/WATCHDOG) with socket activation.

mod http;
mod metrics;
mod notify;
mod v2;
mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

use crate::cli::SafeMode;
use crate::exit::Failure;
use crate::policy::{parse_size, Loaded};
use worker::{log, ModelState};

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// A model to serve, NAME=PATH (.h5/.keras file or SavedModel directory). Repeatable.
    #[arg(short, long = "model", value_name = "NAME=PATH")]
    pub models: Vec<String>,
    /// Serve every model in this directory (.h5, .hdf5, .keras files and SavedModel folders),
    /// each named after its file stem.
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// TOML file with `listen`, `workers`, `queue`, `request_timeout` and `[[model]] name/path`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// 127.0.0.1:8000 (default), unix:/path/to.sock; sockets passed by systemd win over this.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Warm sandbox workers per model.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Requests that may wait per model; beyond it the answer is 503 with Retry-After.
    #[arg(long, value_name = "N")]
    pub queue: Option<usize>,
    /// Seconds per request; a worker that overruns is killed and replaced.
    #[arg(long, value_name = "S")]
    pub request_timeout: Option<u64>,
    /// A new sandbox for every request: nothing is shared between callers (slow: the model is
    /// loaded per request).
    #[arg(long)]
    pub fresh_per_request: bool,
    /// Interpreter inside the sandbox (as for `run`).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Memory limit per worker, e.g. 2G.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Processes + threads per worker.
    #[arg(long, value_name = "N")]
    pub max_procs: Option<u64>,
    /// Confinement policy (TOML) instead of the built-in default.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Keras safe_mode where the loading API has it.
    #[arg(long, value_enum, default_value_t = SafeMode::On)]
    pub safe_mode: SafeMode,
    /// Largest request body (JSON + binary tensors).
    #[arg(long, value_name = "SIZE", default_value = "256M")]
    pub max_body: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<String>,
    workers: Option<usize>,
    queue: Option<usize>,
    request_timeout: Option<u64>,
    #[serde(default)]
    model: Vec<ModelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    name: String,
    path: PathBuf,
    workers: Option<usize>,
}

/// Everything a worker slot needs to (re)start a sandbox for one model.
pub struct ModelConfig {
    pub policy: Loaded,
    pub runtime: crate::python::Runtime,
    pub model: crate::runner::model::ModelPath,
    pub safe_mode: bool,
    pub memory: u64,
    pub max_procs: u64,
    pub max_output: u64,
    pub request_timeout: Duration,
    pub start_timeout: Duration,
    pub fresh_per_request: bool,
}

static SETUP_FAILED: AtomicBool = AtomicBool::new(false);

pub struct App {
    pub models: BTreeMap<String, Arc<ModelState>>,
    pub metrics: Arc<metrics::Metrics>,
    pub max_body: usize,
    pub max_tensor_bytes: u64,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<i32> {
    // Handle SIGTERM from the first moment: a stop during model loading must still drain and
    // stop the sandboxes, not kill the supervisor with the default action.
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let file: ConfigFile = match &args.config {
        None => ConfigFile::default(),
        Some(p) => toml::from_str(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
            .map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?,
    };
    let mut entries: Vec<(String, PathBuf, Option<usize>)> =
        file.model.into_iter().map(|m| (m.name, m.path, m.workers)).collect();
    for m in &args.models {
        let (n, p) = m.split_once('=').ok_or_else(|| Failure::usage(format!("--model {m}: use NAME=PATH")))?;
        entries.push((n.to_string(), PathBuf::from(p), None));
    }
    if let Some(dir) = &args.model_dir {
        entries.extend(models_in(dir)?);
    }
    if entries.is_empty() {
        return Err(Failure::usage("no models: pass --model NAME=PATH, --model-dir DIR or --config FILE").into());
    }
    let policy = Loaded::load(args.policy.as_deref()).map_err(|e| Failure::usage(e.to_string()))?;
    let runtime = crate::python::resolve(args.python.as_deref())?;
    let memory = parse_size(args.memory.as_deref().unwrap_or(&policy.policy.limits.memory)).map_err(Failure::usage)?;
    let max_body = parse_size(&args.max_body).map_err(Failure::usage)?;
    let workers = args.workers.or(file.workers).unwrap_or(1).max(1);
    let queue = args.queue.or(file.queue).unwrap_or(64).max(1);
    let timeout = Duration::from_secs(args.request_timeout.or(file.request_timeout).unwrap_or(60));
    let is_root = nix::unistd::Uid::effective().is_root();
    let metrics = Arc::new(metrics::Metrics::default());
    let mut models = BTreeMap::new();
    let mut slots = Vec::new();
    for (name, path, n) in entries {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) || models.contains_key(&name) {
            return Err(Failure::usage(format!("model name {name:?}: letters, digits, _-. and unique")).into());
        }
        let model = crate::runner::model::check(&path, is_root.then_some(policy.policy.identity.uid))?;
        let cfg = Arc::new(ModelConfig {
            policy: policy.clone(),
            runtime: runtime.clone(),
            model,
            safe_mode: args.safe_mode == SafeMode::On,
            memory,
            max_procs: args.max_procs.unwrap_or(policy.policy.limits.max_procs),
            // Responses are held in memory to answer HTTP: bound them like requests.
            max_output: max_body,
            request_timeout: timeout,
            start_timeout: Duration::from_secs(300),
            fresh_per_request: args.fresh_per_request,
        });
        let (tx, rx) = tokio::sync::mpsc::channel(queue);
        let state = Arc::new(ModelState {
            name: name.clone(),
            signature: Mutex::new(None),
            workers_up: AtomicU64::new(0),
            consecutive_failures: AtomicU64::new(0),
            first_attempt_done: AtomicBool::new(false),
            setup_failure: Mutex::new(None),
            queue: Mutex::new(Some(tx)),
            queue_depth: AtomicI32::new(0),
        });
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..n.unwrap_or(workers).max(1) {
            slots.push(tokio::spawn(worker::run_slot(cfg.clone(), state.clone(), rx.clone(), metrics.clone())));
        }
        models.insert(name, state);
    }
    let app = Arc::new(App { models, metrics, max_body: max_body as usize, max_tensor_bytes: max_body });

    // READY once every model had its first load; if a sandbox could not be built at all, fail
    // closed like `run` (exit 7) rather than serve 503s forever.
    let (fatal_tx, fatal_rx) = tokio::sync::oneshot::channel::<String>();
    let readiness = app.clone();
    tokio::spawn(async move {
        while !readiness.models.values().all(|m| m.first_attempt_done.load(Ordering::SeqCst)) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let failed = readiness.models.values().find_map(|m| {
            m.setup_failure.lock().unwrap_or_else(|p| p.into_inner()).clone().map(|e| format!("model {}: {e}", m.name))
        });
        match failed {
            Some(e) => {
                fatal_tx.send(e).ok();
            }
            None => {
                notify::notify("READY=1\nSTATUS=serving");
                log("event=ready");
            }
        }
    });
    if let Some(every) = notify::watchdog_interval() {
        tokio::spawn(async move {
            loop {
                notify::notify("WATCHDOG=1");
                tokio::time::sleep(every).await;
            }
        });
    }
    let router = http::router(app.clone());
    let listen = args.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8000".into());
    let served = match notify::listen_fd() {
        Some(notify::Passed::Tcp(l)) => {
            l.set_nonblocking(true)?;
            let l = tokio::net::TcpListener::from_std(l)?;
            log(&format!("event=listening addr={} source=systemd", l.local_addr()?));
            axum::serve(l, router).with_graceful_shutdown(stop_signal(term, fatal_rx)).await
        }
        Some(notify::Passed::Unix(l)) => {
            l.set_nonblocking(true)?;
            log("event=listening addr=unix source=systemd");
            axum::serve(tokio::net::UnixListener::from_std(l)?, router)
                .with_graceful_shutdown(stop_signal(term, fatal_rx))
                .await
        }
        None => match listen.strip_prefix("unix:") {
            Some(path) => {
                remove_stale_socket(path)?;
                let l = tokio::net::UnixListener::bind(path).with_context(|| format!("binding {path}"))?;
                log(&format!("event=listening addr=unix:{path}"));
                axum::serve(l, router).with_graceful_shutdown(stop_signal(term, fatal_rx)).await
            }
            None => {
                let l = tokio::net::TcpListener::bind(&listen)
                    .await
                    .map_err(|e| Failure::usage(format!("--listen {listen}: {e}")))?;
                log(&format!("event=listening addr={}", l.local_addr()?));
                axum::serve(l, router).with_graceful_shutdown(stop_signal(term, fatal_rx)).await
            }
        },
    };
    served.context("HTTP server")?;
    // Drained: close every queue so the workers stop their sandboxes, then wait for them.
    for m in app.models.values() {
        m.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
    for s in slots {
        if tokio::time::timeout(Duration::from_secs(15), s).await.is_err() {
            log("event=worker_stop_timeout");
        }
    }
    log("event=stopped");
    if SETUP_FAILED.load(Ordering::SeqCst) {
        return Err(Failure::new(
            crate::exit::Exit::SandboxSetup,
            "a sandbox could not be set up, nothing was served; run `sandload doctor`",
        )
        .into());
    }
    Ok(0)
}

fn models_in(dir: &std::path::Path) -> anyhow::Result<Vec<(String, PathBuf, Option<usize>)>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| Failure::usage(format!("--model-dir {}: {e}", dir.display())))?;
    for e in rd.flatten().take(1000) {
        let p = e.path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("").to_ascii_lowercase();
        let is_model =
            (p.is_file() && matches!(ext.as_str(), "h5" | "hdf5" | "keras")) || p.join("saved_model.pb").is_file();
        let stem = p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        if is_model && !stem.is_empty() {
            out.push((stem, p, None));
        }
    }
    out.sort();
    Ok(out)
}

fn remove_stale_socket(path: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(Failure::usage(format!("--listen unix:{path}: exists and is not a socket")).into());
        }
        std::fs::remove_file(path)?;
    }
    Ok(())
}

/// SIGTERM or SIGINT: stop accepting, let in-flight requests finish.
async fn stop_signal(mut term: tokio::signal::unix::Signal, fatal: tokio::sync::oneshot::Receiver<String>) {
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        Ok(e) = fatal => {
            log(&format!("event=sandbox_setup_failed error={:?}", crate::text::escape(&e)));
            SETUP_FAILED.store(true, Ordering::SeqCst);
        }
    }
    notify::notify("STOPPING=1");
    log("event=stopping");
}
