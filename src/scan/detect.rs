//! Finds what to scan (files, directories, SavedModel directories) and
//! decides each file's format from its magic bytes, not only its name: a
//! `.keras` may be HDF5 or zip, and a renamed file must not pass as clean.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::hdf5::{self, io::FileSource};
use super::{config, Finding, Limits, ScanReport, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Hdf5,
    KerasZip,
    SavedModel,
    Json,
    Unknown,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Hdf5 => "hdf5",
            Format::KerasZip => "keras_v3",
            Format::SavedModel => "saved_model",
            Format::Json => "json",
            Format::Unknown => "unknown",
        }
    }
}

/// Extensions that promise a model: such a file without a known signature
/// is an error (truncated, corrupt or disguised), never "nothing found".
const MODEL_EXTS: &[&str] = &["h5", "hdf5", "keras"];
const MAX_WALK_DEPTH: usize = 64;

pub struct Target {
    pub path: PathBuf,
    pub error: Option<String>,
}

pub fn is_saved_model_dir(dir: &Path) -> bool {
    dir.join("saved_model.pb").is_file() || dir.join("keras_metadata.pb").is_file()
}

/// Expands the command-line paths. Directory walks do not follow symlinks
/// (a link to `/` or a loop would otherwise be walked); explicit paths do.
pub fn collect_targets(paths: &[PathBuf], max_files: usize) -> Vec<Target> {
    let mut out = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Err(e) => out.push(Target { path: p.clone(), error: Some(format!("cannot read: {e}")) }),
            Ok(m) if m.is_dir() => walk(p, 0, max_files, &mut out),
            Ok(_) => out.push(Target { path: p.clone(), error: None }),
        }
    }
    out
}

fn walk(dir: &Path, depth: usize, max_files: usize, out: &mut Vec<Target>) {
    if out.len() >= max_files {
        return;
    }
    if is_saved_model_dir(dir) {
        out.push(Target { path: dir.to_path_buf(), error: None });
        return;
    }
    if depth > MAX_WALK_DEPTH {
        out.push(Target {
            path: dir.to_path_buf(),
            error: Some(format!("directory nesting deeper than {MAX_WALK_DEPTH}; not walked")),
        });
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            out.push(Target { path: dir.to_path_buf(), error: Some(format!("cannot list directory: {e}")) });
            return;
        }
    };
    entries.sort();
    for e in entries {
        if out.len() >= max_files {
            out.push(Target {
                path: e,
                error: Some(format!("more than {max_files} files; the rest were not scanned")),
            });
            return;
        }
        match std::fs::symlink_metadata(&e) {
            Ok(m) if m.is_dir() => walk(&e, depth + 1, max_files, out),
            Ok(m) if m.is_file() => out.push(Target { path: e, error: None }),
            _ => {}
        }
    }
}

pub fn detect(path: &Path, limits: &Limits) -> Result<Format, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.is_dir() {
        return Ok(if is_saved_model_dir(path) { Format::SavedModel } else { Format::Unknown });
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "saved_model.pb" || name == "keras_metadata.pb" {
        return Ok(Format::SavedModel);
    }
    if meta.len() > limits.max_file_size {
        return Err(format!("file is {} bytes, above --max-file-size {}", meta.len(), limits.max_file_size));
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let mut head = [0u8; 8];
    let mut f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let n = read_up_to(&mut f, &mut head).map_err(|e| format!("cannot read: {e}"))?;
    let head = &head[..n];
    if head.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Ok(Format::Hdf5);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Format::KerasZip);
    }
    if MODEL_EXTS.contains(&ext.as_str()) {
        // HDF5 allows a user block before the superblock (512, 1024, … bytes).
        let src = FileSource::new(f).map_err(|e| format!("cannot read: {e}"))?;
        if hdf5::find_signature(&src).is_some() {
            return Ok(Format::Hdf5);
        }
        return Err(format!(
            "named .{ext} but has neither an HDF5 nor a zip signature (truncated, corrupt or disguised)"
        ));
    }
    if ext == "json" && looks_like_keras_json(path, limits) {
        return Ok(Format::Json);
    }
    Ok(Format::Unknown)
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn looks_like_keras_json(path: &Path, limits: &Limits) -> bool {
    read_bounded(path, limits.max_config_size).is_ok_and(|b| {
        let s = String::from_utf8_lossy(&b);
        s.trim_start().starts_with('{') && s.contains("\"class_name\"")
    })
}

/// Reads a whole small file, refusing more than `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf).map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > max {
        return Err(format!("larger than the {max}-byte config limit; not read"));
    }
    Ok(buf)
}

pub fn scan_json_file(path: &Path, limits: &Limits, r: &mut ScanReport) {
    match read_bounded(path, limits.max_config_size) {
        Ok(b) => scan_json_bytes(&b, "model", r),
        Err(e) => r.errors.push(e),
    }
}

pub fn scan_json_bytes(b: &[u8], root: &str, r: &mut ScanReport) {
    match std::str::from_utf8(b) {
        Ok(text) => {
            if let Err(e) = config::scan_json_text(text, root, &mut r.findings) {
                r.errors.push(format!("{root}: invalid JSON: {e}"));
            }
        }
        Err(_) => r.errors.push(format!("{root}: not UTF-8")),
    }
}

pub fn scan_hdf5_file(path: &Path, limits: &Limits, r: &mut ScanReport) {
    let src = match File::open(path).and_then(FileSource::new) {
        Ok(s) => s,
        Err(e) => return r.errors.push(format!("cannot open: {e}")),
    };
    scan_hdf5(&src, limits, "", r);
}

/// HDF5 content (a file, or `model.weights.h5` inside a `.keras` zip).
pub fn scan_hdf5<R: hdf5::io::ReadAt + ?Sized>(src: &R, limits: &Limits, prefix: &str, r: &mut ScanReport) {
    let scan = match hdf5::scan(src, &["model_config", "training_config"], limits.max_config_size) {
        Ok(s) => s,
        Err(e) => return r.errors.push(format!("{prefix}HDF5: {e}")),
    };
    for (name, text) in &scan.attrs {
        let root = if name == "model_config" { "model" } else { "training_config" };
        scan_json_bytes(text.as_bytes(), root, r);
    }
    for u in scan.unread {
        r.errors.push(format!("{prefix}HDF5 {u}"));
    }
    for s in scan.structural {
        r.findings.push(structural_finding(s, prefix));
    }
}

fn structural_finding(s: hdf5::Structural, prefix: &str) -> Finding {
    use hdf5::Structural as S;
    let (severity, location, kind, message) = match s {
        S::ExternalLink { path, file, target } => (Severity::High, path, "hdf5-external-link", format!("external link to {target:?} in file {file:?}: reading it opens another file (CVE-2026-1669, CVE-2026-12480)")),
        S::SoftLink { path, target } => (Severity::Medium, path, "hdf5-soft-link", format!("soft link to {target:?}: Keras weight files do not use links; it can redirect weight loading (CVE-2026-12480)")),
        S::ExternalDataset { path, files } => (Severity::High, path, "hdf5-external-dataset", format!("dataset raw data is read from external file(s) {files:?} (CVE-2026-1669)")),
        S::VirtualDataset { path } => (Severity::High, path, "hdf5-virtual-dataset", "virtual dataset maps data from other files (CVE-2026-1669)".to_string()),
        S::OversizedDataset { path, declared, file_size } => (Severity::High, path, "hdf5-oversized-dataset", match declared {
            Some(d) => format!("dataset declares {d} bytes in a {file_size}-byte file: loading it allocates that much (CVE-2026-0897)"),
            None => "dataset shape overflows 64 bits (CVE-2026-0897)".to_string(),
        }),
    };
    Finding { severity, location: format!("{prefix}{location}"), kind: kind.to_string(), message }
}
