//! The run report (`--report`, `--json`) and the human summary. Child-supplied text is
//! escaped before it is printed anywhere.

use serde::Serialize;
use serde_json::Value;

use crate::broker::messages::{Event, Ready, SigTensor, Signature};
use crate::broker::TensorMeta;
use crate::exit::Exit;
use crate::text::escape;

#[derive(Debug, Serialize, Default)]
pub struct Timings {
    /// Supervisor start → interpreter executed (all confinement steps).
    pub sandbox_setup: Option<f64>,
    /// → imports done (READY).
    pub interpreter_ready: Option<f64>,
    /// → model loaded.
    pub model_loaded: Option<f64>,
    /// → predict done.
    pub predict_done: Option<f64>,
    pub total: f64,
    /// As measured inside the child.
    pub child_import: Option<f64>,
    pub child_load: Option<f64>,
}

#[derive(Debug, Serialize, Default)]
pub struct SandboxReport {
    pub layers: Vec<String>,
    pub disabled_layers: Vec<String>,
    pub loosened: Vec<String>,
    pub landlock_abi: i32,
    pub seccomp_phase1_syscalls: usize,
    pub seccomp_phase2_syscalls: usize,
    pub memory_limit: u64,
    pub memory_mechanism: String,
    pub max_procs: u64,
    pub policy: String,
    /// Read from /proc/<workload>/status on the host once the interpreter was up.
    pub verified: Option<Value>,
    /// The child's peak memory as its cgroup counted it.
    pub peak_memory: Option<u64>,
    /// The supervisor's own peak RSS (VmHWM), in bytes.
    pub supervisor_peak_rss: Option<u64>,
}

#[derive(Debug, Serialize, Default)]
pub struct ChildReport {
    pub exit_status: Option<i32>,
    pub signal: Option<String>,
    /// For a seccomp kill: the syscall, from the kernel's audit record.
    pub seccomp_syscall: Option<String>,
    pub stdout_tail: String,
    pub stdout_bytes: u64,
    pub stderr_tail: String,
    pub stderr_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub sandload_version: &'static str,
    pub model: String,
    pub verdict: Exit,
    pub exit_code: i32,
    pub message: String,
    pub interpreter: String,
    pub runtime: Option<Ready>,
    pub signature: Option<Signature>,
    pub outputs: Vec<TensorMeta>,
    pub timings: Timings,
    pub sandbox: SandboxReport,
    pub child: ChildReport,
    pub events: Vec<Event>,
    pub events_dropped: u64,
    pub scan: Option<Value>,
}

fn shape(s: &[Option<u64>]) -> String {
    let dims: Vec<String> = s.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
    format!("[{}]", dims.join(", "))
}

fn sig_line(t: &SigTensor) -> String {
    format!("{} {} {}", escape(&t.name), t.dtype.name(), shape(&t.shape))
}

/// The short human summary on stdout.
pub fn summary(r: &Report, preview: &[(TensorMeta, Vec<Value>)]) -> String {
    let mut out = String::new();
    if let Some(s) = &r.signature {
        out.push_str("signature:\n");
        for i in &s.inputs {
            out.push_str(&format!("  input   {}\n", sig_line(i)));
        }
        for o in &s.outputs {
            out.push_str(&format!("  output  {}\n", sig_line(o)));
        }
    }
    if !preview.is_empty() {
        out.push_str("prediction:\n");
        for (m, vals) in preview {
            let n: u64 = m.elements().unwrap_or(0);
            let shown: Vec<String> = vals.iter().take(8).map(|v| v.to_string()).collect();
            let more = if n > shown.len() as u64 { format!(", … ({n} values)") } else { String::new() };
            let dims: Vec<Option<u64>> = m.shape.iter().map(|d| Some(*d)).collect();
            out.push_str(&format!(
                "  {} {} {} = [{}{more}]\n",
                escape(&m.name),
                m.dtype.name(),
                shape(&dims),
                shown.join(", ")
            ));
        }
    }
    out
}

/// Lines for stderr: what the model tried, and what the sandbox did about it.
pub fn events_text(r: &Report) -> String {
    let mut out = String::new();
    if !r.events.is_empty() {
        out.push_str(&format!(
            "sandload: the model attempted {} action(s); each was confined by the sandbox:\n",
            r.events.len()
        ));
        for e in &r.events {
            out.push_str(&format!("  - {}: {}\n", escape(&e.event), escape(&e.detail)));
        }
        if r.events_dropped > 0 {
            out.push_str(&format!("  (+{} more not recorded)\n", r.events_dropped));
        }
    }
    out
}

/// The `--json` result on stdout.
pub fn json_result(r: &Report, preview: &[(TensorMeta, Vec<Value>)], full: bool) -> Value {
    let outputs: Vec<Value> = preview
        .iter()
        .map(|(m, vals)| {
            let complete = full && m.elements() == Some(vals.len() as u64);
            serde_json::json!({
                "name": m.name, "dtype": m.dtype, "shape": m.shape,
                "data": if complete { Value::Array(vals.clone()) } else { Value::Null },
                "truncated": !complete,
            })
        })
        .collect();
    serde_json::json!({
        "verdict": r.verdict, "exit_code": r.exit_code, "message": r.message,
        "signature": r.signature, "outputs": outputs, "events": r.events,
        "timings": r.timings,
    })
}
