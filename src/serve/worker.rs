//! Sandboxed workers: the same confined child as `sandload run`, kept alive with the model
//! loaded, answering many predict requests over its broker. A worker that dies, breaks the
//! protocol or overruns is killed and replaced with exponential back-off; a model whose
//! workers keep failing turns not-ready without disturbing the others.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::metrics::Metrics;
use super::ModelConfig;
use crate::broker::messages::Signature;
use crate::broker::{Limits, TensorMeta};
use crate::runner::session::{Conn, Observed, Outcome};
use crate::runner::{cgroup::RunCgroup, spawn};
use crate::tensors::input::Input;
use crate::tensors::output::Sink;

pub type Tensors = Vec<(TensorMeta, Vec<u8>)>;

#[derive(Debug)]
pub enum InferError {
    /// The model raised: the caller's fault or the model's, the worker stays.
    Model(String),
    /// The worker died, broke the protocol or overran; it was replaced.
    Worker(String),
    Timeout,
}

pub struct Job {
    pub inputs: Vec<Input>,
    pub reply: oneshot::Sender<Result<Tensors, InferError>>,
}

/// Shared state of one served model.
pub struct ModelState {
    pub name: String,
    pub signature: Mutex<Option<Signature>>,
    pub workers_up: AtomicU64,
    pub consecutive_failures: AtomicU64,
    pub first_attempt_done: AtomicBool,
    /// Set when a worker could not even build its sandbox: serve refuses to run (exit 7), as
    /// `run` does, instead of answering 503 forever.
    pub setup_failure: Mutex<Option<String>>,
    /// Taken (closed) at shutdown so the workers stop.
    pub queue: Mutex<Option<mpsc::Sender<Job>>>,
    pub queue_depth: AtomicI32,
}

impl ModelState {
    /// Ready when a worker is up and the model is not crash-looping.
    pub fn ready(&self) -> bool {
        self.workers_up.load(Ordering::SeqCst) > 0 && self.consecutive_failures.load(Ordering::SeqCst) < 5
    }
}

/// Collects output tensors in memory (bounded by the broker's payload limit).
#[derive(Default)]
struct VecSink(Tensors);

impl Sink for VecSink {
    fn begin(&mut self, meta: &TensorMeta) -> std::io::Result<()> {
        self.0.push((meta.clone(), Vec::with_capacity(meta.byte_len().unwrap_or(0).min(1 << 30) as usize)));
        Ok(())
    }
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if let Some((_, b)) = self.0.last_mut() {
            b.extend_from_slice(chunk);
        }
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Worker {
    child: tokio::process::Child,
    init_pid: Arc<AtomicI32>,
    conn: Option<Conn>,
    signature: Signature,
    _cgroup: Option<RunCgroup>,
}

impl Worker {
    async fn start(cfg: &ModelConfig, metrics: &Metrics) -> Result<Worker, (bool, String)> {
        let name = format!("sandload-serve-{}-{}", std::process::id(), metrics.next_id());
        let cg = RunCgroup::create(&name, cfg.memory, cfg.max_procs);
        let plan = spawn::build_plan(&spawn::Settings {
            policy: &cfg.policy,
            runtime: &cfg.runtime,
            model_host: &cfg.model.host,
            model_inside: &cfg.model.inside,
            safe_mode: cfg.safe_mode,
            disabled: &[],
            landlock_min_abi: cfg.policy.policy.landlock.min_abi,
            memory: cfg.memory,
            max_procs: cfg.max_procs,
            cpu_seconds: u64::MAX / 2,
            data_rlimit: cg.is_none(),
            cgroup_procs: cg.as_ref().map(|c| c.procs_files()),
        })
        .map_err(|e| (true, e.to_string()))?;
        let (mut child, pipes) = spawn::spawn(&plan).map_err(|e| (true, e.to_string()))?;
        // Drain the child's output so it never blocks; only a tail is kept.
        drop(crate::runner::pump(child.stdout.take(), 4096));
        drop(crate::runner::pump(child.stderr.take(), 4096));
        let init_pid = Arc::new(AtomicI32::new(0));
        let pid = init_pid.clone();
        let limits = Limits::with_max_payload(cfg.max_output);
        let handshake = tokio::task::spawn_blocking(move || {
            let mut conn = Conn { pipes, limits, started: Instant::now() };
            let mut seen = Observed::default();
            conn.handshake(&pid, &mut seen, || {}).map(|()| (conn, seen))
        });
        let mut w = Worker {
            child,
            init_pid,
            conn: None,
            signature: Signature { inputs: vec![], outputs: vec![], load_seconds: 0.0 },
            _cgroup: cg,
        };
        match tokio::time::timeout(cfg.start_timeout, handshake).await {
            Ok(Ok(Ok((conn, seen)))) => {
                w.conn = Some(conn);
                w.signature = seen.signature.unwrap_or(w.signature);
                Ok(w)
            }
            Ok(Ok(Err(o))) => {
                w.kill();
                Err((matches!(o, Outcome::SetupFailed(_)), describe(&o)))
            }
            Ok(Err(e)) => {
                w.kill();
                Err((false, e.to_string()))
            }
            Err(_) => {
                w.kill();
                Err((false, "the worker did not load the model in time".into()))
            }
        }
    }

    async fn predict(&mut self, inputs: Vec<Input>, timeout: Duration) -> Result<Tensors, InferError> {
        let mut conn = self.conn.take().ok_or_else(|| InferError::Worker("worker not connected".into()))?;
        let sig = self.signature.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut sink = VecSink::default();
            let mut seen = Observed::default();
            let r = conn.predict(&inputs, &sig, &mut [&mut sink], &mut seen);
            (conn, r.map(|()| sink.0))
        });
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok((conn, Ok(t)))) => {
                self.conn = Some(conn);
                Ok(t)
            }
            Ok(Ok((conn, Err(Outcome::ModelRaised(e))))) => {
                self.conn = Some(conn);
                Err(InferError::Model(format!("{}: {}", e.kind, e.message.chars().take(2000).collect::<String>())))
            }
            Ok(Ok((conn, Err(Outcome::Usage(m))))) => {
                self.conn = Some(conn);
                Err(InferError::Model(m))
            }
            Ok(Ok((_, Err(o)))) => Err(InferError::Worker(describe(&o))),
            Ok(Err(e)) => Err(InferError::Worker(e.to_string())),
            Err(_) => Err(InferError::Timeout),
        }
    }

    fn kill(&mut self) {
        crate::runner::kill_tree(&self.init_pid, &mut self.child);
    }

    async fn stop(mut self) {
        if let Some(mut c) = self.conn.take() {
            // Best effort: the kill below ends the worker either way.
            tokio::task::spawn_blocking(move || c.shutdown()).await.ok();
        }
        if tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await.is_err() {
            self.kill();
        }
        self.kill();
        self.child.wait().await.ok();
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::SetupFailed(Some(e)) => format!("sandbox setup failed: {e}"),
        Outcome::SetupFailed(None) => "sandbox setup failed".into(),
        Outcome::Breach(e) => format!("protocol breach: {e}"),
        Outcome::ChildGone(w) => format!("the worker died {w}"),
        Outcome::ModelRaised(e) => {
            format!("the model raised: {}: {}", e.kind, e.message.chars().take(500).collect::<String>())
        }
        Outcome::Usage(m) => m.clone(),
        Outcome::OutputFailed(m) => m.clone(),
        Outcome::Done => "done".into(),
    }
}

/// One worker slot: start, serve jobs until a failure, restart with back-off; ends when the
/// queue closes (shutdown).
pub async fn run_slot(
    cfg: Arc<ModelConfig>,
    state: Arc<ModelState>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    metrics: Arc<Metrics>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let worker = Worker::start(&cfg, &metrics).await;
        if let Err((true, e)) = &worker {
            *state.setup_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
        }
        state.first_attempt_done.store(true, Ordering::SeqCst);
        let mut w = match worker {
            Ok(w) => {
                *state.signature.lock().unwrap_or_else(|e| e.into_inner()) = Some(w.signature.clone());
                state.workers_up.fetch_add(1, Ordering::SeqCst);
                log(&format!("model={} event=worker_ready", state.name));
                w
            }
            Err((_, e)) => {
                state.consecutive_failures.fetch_add(1, Ordering::SeqCst);
                metrics.restart(&state.name, "start_failed");
                log(&format!(
                    "model={} event=worker_start_failed backoff_ms={} error={:?}",
                    state.name,
                    backoff.as_millis(),
                    crate::text::escape(&e)
                ));
                if rx.lock().await.is_closed() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let mut served = 0u64;
        loop {
            let job = rx.lock().await.recv().await;
            let Some(job) = job else {
                state.workers_up.fetch_sub(1, Ordering::SeqCst);
                w.stop().await;
                return;
            };
            state.queue_depth.fetch_sub(1, Ordering::SeqCst);
            let r = w.predict(job.inputs, cfg.request_timeout).await;
            let failed = match &r {
                Ok(_) | Err(InferError::Model(_)) => false,
                Err(InferError::Worker(e)) => {
                    metrics.violation(&state.name, "worker_failure");
                    log(&format!("model={} event=worker_failed error={:?}", state.name, crate::text::escape(e)));
                    true
                }
                Err(InferError::Timeout) => {
                    metrics.violation(&state.name, "timeout");
                    log(&format!("model={} event=worker_timeout", state.name));
                    true
                }
            };
            if job.reply.send(r).is_err() {
                // The client went away; nothing to answer.
            }
            served += 1;
            if failed || cfg.fresh_per_request {
                state.workers_up.fetch_sub(1, Ordering::SeqCst);
                w.kill();
                w.stop().await;
                if failed {
                    state.consecutive_failures.fetch_add(1, Ordering::SeqCst);
                    metrics.restart(&state.name, "failure");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                break;
            }
            state.consecutive_failures.store(0, Ordering::SeqCst);
            backoff = Duration::from_millis(200);
            if served == u64::MAX {
                break;
            }
        }
    }
}

pub fn log(line: &str) {
    eprintln!("sandload-serve: {line}");
}
