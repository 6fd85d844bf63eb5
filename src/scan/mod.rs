//! `sandload scan`: static triage of Keras model files (legacy HDF5, Keras v3
//! zip, SavedModel directories, JSON configs). Never executes, imports or
//! unpickles anything; every size read from the file is bounded before use.
//! Assumes every byte is hostile, including lengths and offsets.

mod config;
mod detect;
pub mod hdf5;
mod keras_zip;
mod known_classes;
pub mod marshal;
mod output;
mod protobuf;
mod pycode;
mod sarif;
mod savedmodel;

use std::path::{Path, PathBuf};

pub use detect::Format;

/// How bad a finding is. Ordered, so `--fail-on` is a comparison.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(serde::Serialize, Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    /// Where inside the model: layer path ("model/sequential_1/lambda_2") or HDF5 object path.
    pub location: String,
    /// Stable machine-readable kind (docs/SCAN.md lists them); also the SARIF rule id.
    pub kind: String,
    pub message: String,
}

#[derive(serde::Serialize, Debug, Clone)]
pub struct ScanReport {
    pub path: String,
    /// hdf5, keras_v3, saved_model, json or unknown (not scannable).
    pub format: String,
    pub findings: Vec<Finding>,
    /// What could not be read. Non-empty means the file is not known clean.
    pub errors: Vec<String>,
}

impl ScanReport {
    fn new(path: &Path, format: Format) -> Self {
        Self {
            path: path.display().to_string(),
            format: format.as_str().to_string(),
            findings: Vec::new(),
            errors: Vec::new(),
        }
    }
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
    pub fn scannable(&self) -> bool {
        self.format != Format::Unknown.as_str()
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
    Sarif,
}

/// `sandload scan [OPTIONS] <PATH>...`
#[derive(clap::Args, Debug, Clone)]
pub struct ScanArgs {
    /// Model files or directories (searched recursively; SavedModel directories are scanned as one model).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Exit 1 when a finding at or above this severity is present.
    #[arg(long, value_enum, default_value_t = Severity::Medium)]
    pub fail_on: Severity,
    /// Files larger than this many bytes are reported as errors, not read.
    #[arg(long, default_value_t = Limits::default().max_file_size)]
    pub max_file_size: u64,
    /// Largest config (JSON attribute, zip member, protobuf) read into memory, in bytes.
    #[arg(long, default_value_t = Limits::default().max_config_size)]
    pub max_config_size: u64,
    /// Most entries accepted in a `.keras` zip.
    #[arg(long, default_value_t = Limits::default().max_zip_entries)]
    pub max_zip_entries: usize,
    /// Most files visited when walking directories.
    #[arg(long, default_value_t = Limits::default().max_files)]
    pub max_files: usize,
}

/// Hard bounds on what is read from untrusted input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file_size: u64,
    pub max_config_size: u64,
    pub max_zip_entries: usize,
    /// Uncompressed/compressed ratio above which a zip member is a bomb.
    pub max_zip_ratio: u64,
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_size: 64 << 30,
            max_config_size: 64 << 20,
            max_zip_entries: 10_000,
            max_zip_ratio: 200,
            max_files: 100_000,
        }
    }
}

impl ScanArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_file_size: self.max_file_size,
            max_config_size: self.max_config_size,
            max_zip_entries: self.max_zip_entries,
            max_files: self.max_files,
            ..Limits::default()
        }
    }
}

/// Process exit codes of `sandload scan`, as modelscan users expect. When
/// several apply, the first in this order wins: findings, error, nothing scannable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    Clean = 0,
    Findings = 1,
    Error = 2,
    NothingScannable = 3,
}

pub fn exit_code(reports: &[ScanReport], fail_on: Severity) -> ExitCode {
    if reports.iter().any(|r| r.worst().is_some_and(|w| w >= fail_on)) {
        ExitCode::Findings
    } else if reports.iter().any(|r| !r.errors.is_empty()) {
        ExitCode::Error
    } else if !reports.iter().any(ScanReport::scannable) {
        ExitCode::NothingScannable
    } else {
        ExitCode::Clean
    }
}

/// Entry point of `sandload scan`: scans, prints, returns the exit code.
pub fn run(args: &ScanArgs) -> anyhow::Result<i32> {
    let limits = args.limits();
    let targets = detect::collect_targets(&args.paths, limits.max_files);
    let progress = output::Progress::new(targets.len());
    let mut reports = Vec::with_capacity(targets.len());
    for (i, t) in targets.iter().enumerate() {
        progress.tick(i, &t.path);
        reports.push(match &t.error {
            Some(e) => {
                let mut r = ScanReport::new(&t.path, Format::Unknown);
                r.errors.push(e.clone());
                r
            }
            None => scan_with(&t.path, &limits),
        });
    }
    progress.done();
    let code = exit_code(&reports, args.fail_on);
    let mut stdout = std::io::stdout().lock();
    match args.format {
        OutputFormat::Human => output::human(&mut stdout, &reports, args.fail_on)?,
        OutputFormat::Json => output::json(&mut stdout, &reports, code)?,
        OutputFormat::Sarif => sarif::write(&mut stdout, &reports)?,
    }
    Ok(code as i32)
}

/// Scans one model (file or SavedModel directory) with default limits. Used
/// by `sandload run` before the model is handed to the sandbox. The decoders
/// are proptested and fuzzed not to panic; in unwinding builds a panic that
/// slipped through is still caught and reported as an error (the release
/// profile aborts instead, so this is a backstop, not the guarantee).
pub fn scan_model(path: &Path) -> ScanReport {
    scan_with(path, &Limits::default())
}

fn scan_with(path: &Path, limits: &Limits) -> ScanReport {
    let caught = std::panic::catch_unwind(|| scan_inner(path, limits));
    caught.unwrap_or_else(|_| {
        let mut r = ScanReport::new(path, Format::Unknown);
        r.errors.push("internal error: scanner panicked on this input (please report it)".into());
        r
    })
}

fn scan_inner(path: &Path, limits: &Limits) -> ScanReport {
    let format = match detect::detect(path, limits) {
        Ok(f) => f,
        Err(e) => {
            let mut r = ScanReport::new(path, Format::Unknown);
            r.errors.push(e);
            return r;
        }
    };
    let mut r = ScanReport::new(path, format);
    match format {
        Format::Hdf5 => detect::scan_hdf5_file(path, limits, &mut r),
        Format::KerasZip => keras_zip::scan(path, limits, &mut r),
        Format::SavedModel => savedmodel::scan_dir(path, limits, &mut r),
        Format::Json => detect::scan_json_file(path, limits, &mut r),
        Format::Unknown => {}
    }
    r.findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.location.cmp(&b.location)));
    r
}

/// Entry points for the cargo-fuzz targets in fuzz/ (not a stable API);
/// unused by the sandload binary itself.
#[doc(hidden)]
#[allow(dead_code)]
pub mod fuzzing {
    use super::{keras_zip, pycode, Format, Limits, ScanReport};

    pub fn hdf5(data: &[u8]) {
        let mut r = ScanReport::new(std::path::Path::new("fuzz.h5"), Format::Hdf5);
        super::detect::scan_hdf5(data, &Limits::default(), "", &mut r);
    }

    pub fn marshal(data: &[u8]) {
        let _ = pycode::judge_raw(data);
    }

    pub fn config(data: &[u8]) {
        let mut r = ScanReport::new(std::path::Path::new("fuzz.json"), Format::Json);
        super::detect::scan_json_bytes(data, "model", &mut r);
    }

    /// The zip reader wants a file (stored weights are checked in place).
    pub fn keras_zip(data: &[u8], scratch: &std::path::Path) {
        if std::fs::write(scratch, data).is_ok() {
            let mut r = ScanReport::new(scratch, Format::KerasZip);
            keras_zip::scan(scratch, &Limits::default(), &mut r);
        }
    }
}

#[cfg(test)]
mod proptests;
