//! The broker conversation with one child, run on a blocking thread: status pipe until
//! end-of-file, then READY, LOADED, optionally PREDICT→RESULT, then SHUTDOWN. Every read is
//! bounded; the overall timeout is enforced by killing the child, which ends every read here.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::broker::frame::{encode_preamble, read_frame, FrameError, Kind, RawFrame};
use crate::broker::messages::{ErrorMsg, Event, Ready, Signature};
use crate::broker::{DType, Limits, TensorMeta, TensorsHeader};
use crate::sandbox::status::{Message, StepError};
use crate::tensors::input::{Input, Source};
use crate::tensors::output::Sink;
use crate::tensors::values::encode;

use super::spawn::Pipes;

pub enum Outcome {
    SetupFailed(Option<StepError>),
    Breach(FrameError),
    /// The child ended the conversation (died) before answering.
    ChildGone(&'static str),
    ModelRaised(ErrorMsg),
    Usage(String),
    OutputFailed(String),
    Done,
}

#[derive(Default)]
pub struct Observed {
    pub ready: Option<Ready>,
    pub signature: Option<Signature>,
    pub outputs: Vec<TensorMeta>,
    pub events: Vec<Event>,
    pub events_dropped: u64,
    pub t_exec: Option<f64>,
    pub t_ready: Option<f64>,
    pub t_loaded: Option<f64>,
    pub t_result: Option<f64>,
}

/// One child's broker pipes, used from a blocking thread. The CLI makes one conversation of
/// it ([`run`]); `serve` keeps it and sends many predict requests over the same pipes.
pub struct Conn {
    pub pipes: Pipes,
    pub limits: Limits,
    pub started: Instant,
}

pub struct Job {
    pub inputs: Vec<Input>,
    pub sink: Option<Box<dyn Sink + Send>>,
    pub preview: crate::tensors::output::Preview,
    pub limits: Limits,
    pub started: Instant,
    pub init_pid: Arc<AtomicI32>,
    /// Called once the workload is up, to verify its confinement from the host.
    pub on_ready: Box<dyn FnOnce() + Send>,
}

pub fn run(pipes: Pipes, mut job: Job) -> (Outcome, Observed, Job) {
    let mut seen = Observed::default();
    let mut conn = Conn { pipes, limits: job.limits, started: job.started };
    let on_ready = std::mem::replace(&mut job.on_ready, Box::new(|| {}));
    let outcome = match conn.handshake(&job.init_pid, &mut seen, on_ready) {
        Err(o) => o,
        Ok(()) if job.inputs.is_empty() => Outcome::Done,
        Ok(()) => {
            let sig = seen.signature.clone().expect("handshake sets it");
            let mut sinks: Vec<&mut dyn Sink> = vec![&mut job.preview];
            if let Some(s) = job.sink.as_mut() {
                sinks.push(s.as_mut());
            }
            match conn.predict(&job.inputs, &sig, &mut sinks, &mut seen) {
                Ok(()) => Outcome::Done,
                Err(o) => o,
            }
        }
    };
    if matches!(outcome, Outcome::Done | Outcome::Usage(_)) {
        conn.shutdown();
    }
    (outcome, seen, job)
}

impl Conn {
    /// Status pipe to end-of-file, then READY and LOADED.
    pub fn handshake(
        &mut self,
        init_pid: &AtomicI32,
        seen: &mut Observed,
        on_ready: impl FnOnce(),
    ) -> Result<(), Outcome> {
        // Status pipe: at most a few lines; end-of-file means the interpreter was executed.
        let mut status = Vec::new();
        if let Err(e) = (&mut self.pipes.status).take(64 << 10).read_to_end(&mut status) {
            return Err(Outcome::SetupFailed(Some(StepError::check("status.read", e.to_string()))));
        }
        for line in status.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Message>(line) {
                Ok(Message::Init { pid }) => init_pid.store(pid, Ordering::SeqCst),
                Ok(Message::Failed(e)) => return Err(Outcome::SetupFailed(Some(e))),
                Err(_) => {
                    return Err(Outcome::SetupFailed(Some(StepError::check("status.parse", "garbled status line"))))
                }
            }
        }
        if init_pid.load(Ordering::SeqCst) == 0 {
            return Err(Outcome::SetupFailed(None));
        }
        seen.t_exec = Some(self.started.elapsed().as_secs_f64());
        let f = self.next(seen, "READY")?;
        match f.kind {
            Kind::Ready => seen.ready = Some(f.parse::<Ready>().map_err(Outcome::Breach)?),
            Kind::Error => return Err(model_raised(&f)),
            k => return Err(Outcome::Breach(FrameError::Unexpected { got: k, wanted: "READY" })),
        }
        seen.t_ready = Some(self.started.elapsed().as_secs_f64());
        on_ready();
        let f = self.next(seen, "LOADED")?;
        match f.kind {
            Kind::Loaded => seen.signature = Some(f.parse::<Signature>().map_err(Outcome::Breach)?),
            Kind::Error => return Err(model_raised(&f)),
            k => return Err(Outcome::Breach(FrameError::Unexpected { got: k, wanted: "LOADED" })),
        }
        seen.t_loaded = Some(self.started.elapsed().as_secs_f64());
        Ok(())
    }

    /// PREDICT → RESULT, streaming the outputs into every sink. A model error is
    /// `Err(ModelRaised)` and leaves the child usable.
    pub fn predict(
        &mut self,
        inputs: &[Input],
        sig: &Signature,
        sinks: &mut [&mut dyn Sink],
        seen: &mut Observed,
    ) -> Result<(), Outcome> {
        let plan = match_inputs(inputs, sig).map_err(Outcome::Usage)?;
        if let Err(e) = send_predict(&mut self.pipes.requests, inputs, &plan) {
            // EPIPE: the child died while reading; its exit status tells why.
            return Err(if e.kind() == std::io::ErrorKind::BrokenPipe {
                Outcome::ChildGone("while receiving inputs")
            } else {
                Outcome::Usage(format!("reading inputs: {e}"))
            });
        }
        let f = self.next(seen, "RESULT")?;
        match f.kind {
            Kind::Result => receive_result(&f, &mut self.pipes.responses, &self.limits, sinks, seen)?,
            Kind::Error => return Err(model_raised(&f)),
            k => return Err(Outcome::Breach(FrameError::Unexpected { got: k, wanted: "RESULT" })),
        }
        seen.t_result = Some(self.started.elapsed().as_secs_f64());
        Ok(())
    }

    pub fn shutdown(&mut self) {
        // If the child is already gone the write fails; the exit status says why.
        self.pipes.requests.write_all(&encode_preamble(Kind::Shutdown, 0, 0)).ok();
    }

    /// Reads the next non-event frame; events are kept (bounded) on the way.
    fn next(&mut self, seen: &mut Observed, wanted: &'static str) -> Result<RawFrame, Outcome> {
        let expected: &[Kind] = match wanted {
            "READY" => &[Kind::Ready, Kind::Error],
            "LOADED" => &[Kind::Loaded, Kind::Error],
            _ => &[Kind::Result, Kind::Error],
        };
        loop {
            let f = read_frame(&mut self.pipes.responses, &self.limits, expected).map_err(|e| match e {
                FrameError::Closed => Outcome::ChildGone(wanted),
                FrameError::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => Outcome::ChildGone(wanted),
                e => Outcome::Breach(e),
            })?;
            if f.kind != Kind::Event {
                return Ok(f);
            }
            if seen.events.len() >= self.limits.max_events {
                seen.events_dropped += 1;
                continue;
            }
            // Kept for the report: at most max_events of them, each cut to 1 KiB, so a chatty
            // child costs a bounded amount of memory.
            let mut e = f.parse::<Event>().map_err(Outcome::Breach)?;
            e.event = e.event.chars().take(64).collect();
            e.detail = e.detail.chars().take(1024).collect();
            seen.events.push(e);
        }
    }
}

fn model_raised(f: &RawFrame) -> Outcome {
    match f.parse::<ErrorMsg>() {
        Ok(e) => Outcome::ModelRaised(e),
        Err(e) => Outcome::Breach(e),
    }
}

/// For each model input (in signature order), the index of the user's input and the dtype
/// it travels as.
fn match_inputs(inputs: &[Input], sig: &Signature) -> Result<Vec<(usize, DType, String)>, String> {
    let names: Vec<&str> = sig.inputs.iter().map(|i| i.name.as_str()).collect();
    for i in inputs {
        if let Some(n) = &i.name {
            if !names.contains(&n.as_str()) {
                return Err(format!("the model has no input named {n:?} (its inputs: {})", names.join(", ")));
            }
        }
    }
    let mut unnamed = inputs.iter().enumerate().filter(|(_, i)| i.name.is_none()).map(|(k, _)| k);
    let mut plan = Vec::new();
    for s in &sig.inputs {
        let k = inputs
            .iter()
            .position(|i| i.name.as_deref() == Some(s.name.as_str()))
            .or_else(|| unnamed.next())
            .ok_or_else(|| format!("no value for the model's input {:?}", s.name))?;
        plan.push((k, inputs[k].dtype.unwrap_or(s.dtype), s.name.clone()));
    }
    if unnamed.next().is_some() {
        return Err(format!("more inputs given than the model takes ({})", names.join(", ")));
    }
    Ok(plan)
}

fn send_predict(w: &mut std::fs::File, inputs: &[Input], plan: &[(usize, DType, String)]) -> std::io::Result<()> {
    let too_large = || std::io::Error::other("inputs too large");
    let header = TensorsHeader {
        tensors: plan
            .iter()
            .map(|(k, dtype, name)| TensorMeta { name: name.clone(), dtype: *dtype, shape: inputs[*k].shape.clone() })
            .collect(),
    };
    let mut total = 0u64;
    for m in &header.tensors {
        total = total.checked_add(m.byte_len().ok_or_else(too_large)?).ok_or_else(too_large)?;
    }
    let h = serde_json::to_vec(&header)?;
    w.write_all(&encode_preamble(Kind::Predict, h.len() as u32, total))?;
    w.write_all(&h)?;
    for (m, (k, dtype, _)) in header.tensors.iter().zip(plan) {
        write_tensor(w, &inputs[*k], *dtype, m.byte_len().unwrap_or(0))?;
    }
    w.flush()
}

fn write_tensor(w: &mut std::fs::File, input: &Input, dtype: DType, len: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    match &input.source {
        Source::Npy { path, offset } => {
            let mut f = std::fs::File::open(path)?;
            f.seek(SeekFrom::Start(*offset))?;
            copy_exact(&mut f, w, len)
        }
        Source::Npz { path, index } => {
            let mut zip = zip::ZipArchive::new(std::fs::File::open(path)?).map_err(std::io::Error::other)?;
            let mut entry = zip.by_index(*index).map_err(std::io::Error::other)?;
            crate::tensors::input::parse_npy_header(&mut entry).map_err(std::io::Error::other)?;
            copy_exact(&mut entry, w, len)
        }
        Source::Bytes(b) => {
            if b.len() as u64 != len {
                return Err(std::io::Error::other("tensor bytes do not match its shape"));
            }
            w.write_all(b)
        }
        Source::Json { values } => {
            let mut buf = Vec::with_capacity(values.len() * dtype.size() as usize);
            for v in values {
                encode(dtype, v, &mut buf).map_err(std::io::Error::other)?;
            }
            w.write_all(&buf)
        }
    }
}

/// Copies exactly `len` bytes, failing on a short source (a file changed since it was checked).
fn copy_exact(r: &mut impl Read, w: &mut impl Write, len: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "input file shrank"));
        }
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn receive_result(
    f: &RawFrame,
    r: &mut std::fs::File,
    limits: &Limits,
    sinks: &mut [&mut dyn Sink],
    seen: &mut Observed,
) -> Result<(), Outcome> {
    let header: TensorsHeader = f.parse().map_err(Outcome::Breach)?;
    let sizes = header.validate(Kind::Result, f.payload_len, limits).map_err(Outcome::Breach)?;
    let mut buf = vec![0u8; 1 << 20];
    for (meta, size) in header.tensors.iter().zip(sizes) {
        for s in sinks.iter_mut() {
            s.begin(meta).map_err(|e| Outcome::OutputFailed(e.to_string()))?;
        }
        let mut left = size;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = r.read(&mut buf[..want]).map_err(|e| Outcome::Breach(e.into()))?;
            if n == 0 {
                return Err(Outcome::ChildGone("in the middle of a result"));
            }
            for s in sinks.iter_mut() {
                s.write(&buf[..n]).map_err(|e| Outcome::OutputFailed(e.to_string()))?;
            }
            left -= n as u64;
        }
        seen.outputs.push(meta.clone());
    }
    for s in sinks.iter_mut() {
        s.finish().map_err(|e| Outcome::OutputFailed(e.to_string()))?;
    }
    Ok(())
}
