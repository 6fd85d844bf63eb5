//! Checking the model path before anything runs (exit 2 for what cannot be a model) and
//! choosing where it appears inside the sandbox.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::exit::Failure;

#[derive(Debug, Clone)]
pub struct ModelPath {
    /// Canonical host path.
    pub host: PathBuf,
    /// Path inside the sandbox: /model/<sanitised name>.
    pub inside: PathBuf,
}

pub fn check(path: &Path, sandbox_uid: Option<u32>) -> Result<ModelPath, Failure> {
    let fail = |why: &str| Failure::usage(format!("model {}: {why}", path.display()));
    // metadata, not open: opening a FIFO would block, and a device must never be read.
    let meta = std::fs::metadata(path).map_err(|e| fail(&e.to_string()))?;
    let ft = meta.file_type();
    if ft.is_fifo() || ft.is_socket() || ft.is_block_device() || ft.is_char_device() {
        return Err(fail("is a FIFO, socket or device, not a model file"));
    }
    let host = path.canonicalize().map_err(|e| fail(&e.to_string()))?;
    let name = host.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    if ft.is_dir() {
        if !(host.join("saved_model.pb").is_file() || host.join("saved_model.pbtxt").is_file()) {
            return Err(fail("is a directory but not a SavedModel (no saved_model.pb)"));
        }
    } else if !matches!(
        host.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(),
        Some("h5" | "hdf5" | "keras")
    ) {
        return Err(fail("unsupported format: use .h5, .hdf5, .keras or a SavedModel directory"));
    }
    if let Some(uid) = sandbox_uid {
        readable_by_others(&host, uid, 0).map_err(|p| {
            Failure::usage(format!(
                "model {}: {} is not readable by the sandbox's unprivileged uid {uid}; make it world-readable \
                 (chmod -R o+rX) or copy it somewhere that is",
                path.display(),
                p.display()
            ))
        })?;
    }
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let safe = if safe.starts_with('.') { format!("model{safe}") } else { safe };
    Ok(ModelPath { host, inside: Path::new("/model").join(safe) })
}

/// The sandbox reads the model as an unprivileged uid; a root-only file would fail deep inside
/// Keras with a confusing message, so say it here. Walks a SavedModel a few levels deep.
fn readable_by_others(p: &Path, uid: u32, depth: u32) -> Result<(), PathBuf> {
    let m = std::fs::metadata(p).map_err(|_| p.to_path_buf())?;
    let mode = m.mode();
    let ok = m.uid() == uid || mode & 0o004 != 0;
    if !ok || (m.is_dir() && mode & 0o001 == 0 && m.uid() != uid) {
        return Err(p.to_path_buf());
    }
    if m.is_dir() && depth < 4 {
        for e in std::fs::read_dir(p).map_err(|_| p.to_path_buf())?.flatten().take(10_000) {
            readable_by_others(&e.path(), uid, depth + 1)?;
        }
    }
    Ok(())
}
