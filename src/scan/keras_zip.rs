//! Keras v3 `.keras` archives (zip): `config.json`, `metadata.json` and the
//! `model.weights.h5` inside. Nothing is extracted to disk; members are read
//! through bounded readers, so path traversal entries and decompression bombs
//! are reported, never written or inflated without limit.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path};

use super::detect::{scan_hdf5, scan_json_bytes};
use super::hdf5::io::{FileSource, ReadAt};
use super::{Finding, Format, Limits, ScanReport, Severity};

/// Entries smaller than this are never called bombs, whatever their ratio
/// (a 1 KiB JSON of spaces compresses 100x and is harmless).
const BOMB_FLOOR: u64 = 1 << 20;
/// Largest compressed weights member inflated into memory for HDF5 checks.
const MAX_INFLATED_WEIGHTS: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("not a readable zip: {0}")]
    Archive(#[from] zip::result::ZipError),
    #[error("cannot open: {0}")]
    Open(#[from] std::io::Error),
    #[error("{count} entries, above the limit of {max}")]
    TooManyEntries { count: usize, max: usize },
}

pub fn scan(path: &Path, limits: &Limits, r: &mut ScanReport) {
    if let Err(e) = scan_inner(path, limits, r) {
        r.errors.push(e.to_string());
    }
}

/// Why an entry name is unsafe to extract (zip-slip), if it is.
pub fn traversal_reason(name: &str) -> Option<&'static str> {
    if name.starts_with('/') || name.starts_with('\\') {
        return Some("absolute path");
    }
    if name.contains('\\') {
        return Some("backslash separator");
    }
    if name.as_bytes().get(1) == Some(&b':') {
        return Some("drive letter");
    }
    if name.contains('\0') {
        return Some("NUL byte");
    }
    Path::new(name).components().any(|c| matches!(c, Component::ParentDir)).then_some("`..` component")
}

/// True when a member inflates beyond `ratio` times its compressed size.
pub fn is_bomb(compressed: u64, uncompressed: u64, ratio: u64) -> bool {
    uncompressed > BOMB_FLOOR && uncompressed / compressed.max(1) > ratio
}

fn scan_inner(path: &Path, limits: &Limits, r: &mut ScanReport) -> Result<(), ZipError> {
    let file = File::open(path)?;
    let mut zip = zip::ZipArchive::new(file)?;
    if zip.len() > limits.max_zip_entries {
        return Err(ZipError::TooManyEntries { count: zip.len(), max: limits.max_zip_entries });
    }
    let mut wanted: Vec<(usize, String)> = Vec::new();
    let mut has_config = false;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i)?;
        let name = entry.name().to_string();
        if let Some(why) = traversal_reason(&name) {
            r.findings.push(Finding { severity: Severity::Critical, location: name.clone(), kind: "zip-path-traversal".into(), message: format!("archive entry {name:?} escapes the extraction directory ({why}): a naive extractor writes outside it (zip-slip)") });
            continue;
        }
        if is_bomb(entry.compressed_size(), entry.size(), limits.max_zip_ratio) {
            r.findings.push(Finding {
                severity: Severity::High,
                location: name.clone(),
                kind: "zip-bomb".into(),
                message: format!(
                    "entry inflates {} bytes from {} ({}x): decompression bomb; not read",
                    entry.size(),
                    entry.compressed_size(),
                    entry.size() / entry.compressed_size().max(1)
                ),
            });
            if name == "config.json" {
                r.errors.push("config.json was not read (decompression bomb)".into());
                has_config = true;
            }
            continue;
        }
        if name == "config.json" {
            has_config = true;
        }
        if matches!(name.as_str(), "config.json" | "metadata.json" | "model.weights.h5") {
            wanted.push((i, name));
        }
    }
    if !has_config {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("keras")) {
            r.errors.push("zip has no config.json: not a Keras v3 archive, or damaged".into());
        } else {
            r.format = Format::Unknown.as_str().into();
        }
        return Ok(());
    }
    for (i, name) in wanted {
        match name.as_str() {
            "model.weights.h5" => weights(path, &mut zip, i, limits, r)?,
            _ => {
                let bytes = read_member(&mut zip, i, limits.max_config_size, limits.max_zip_ratio)?;
                match bytes {
                    Ok(b) if name == "config.json" => scan_json_bytes(&b, "model", r),
                    Ok(b) => {
                        if serde_json::from_slice::<serde_json::Value>(&b).is_err() {
                            r.errors.push(format!("{name}: invalid JSON"));
                        }
                    }
                    Err(e) => r.errors.push(format!("{name}: {e}")),
                }
            }
        }
    }
    Ok(())
}

/// Inflates one member, stopping at `max` bytes or at a bomb-like ratio
/// whatever sizes the headers declare.
fn read_member(
    zip: &mut zip::ZipArchive<File>,
    i: usize,
    max: u64,
    ratio: u64,
) -> Result<Result<Vec<u8>, String>, ZipError> {
    let entry = zip.by_index(i)?;
    let compressed = entry.compressed_size();
    let mut buf = Vec::new();
    entry.take(max + 1).read_to_end(&mut buf)?;
    let n = buf.len() as u64;
    if n > max {
        return Ok(Err(format!("larger than the {max}-byte config limit; not read")));
    }
    if is_bomb(compressed, n, ratio) {
        return Ok(Err(format!("inflates {n} bytes from {compressed}: decompression bomb")));
    }
    Ok(Ok(buf))
}

/// A byte range of the archive: stored members are checked in place.
struct Window<'a> {
    inner: &'a FileSource,
    start: u64,
    len: u64,
}

impl ReadAt for Window<'_> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_exact_at_(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        // Stay inside the member: HDF5 offsets must not reach other entries.
        offset.checked_add(buf.len() as u64).filter(|&e| e <= self.len).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        self.inner.read_exact_at_(buf, self.start + offset)
    }
}

fn weights(
    path: &Path,
    zip: &mut zip::ZipArchive<File>,
    i: usize,
    limits: &Limits,
    r: &mut ScanReport,
) -> Result<(), ZipError> {
    let prefix = "model.weights.h5:";
    let (stored, start, size) = {
        let e = zip.by_index_raw(i)?;
        (e.compression() == zip::CompressionMethod::Stored, e.data_start(), e.size())
    };
    if stored {
        let src = FileSource::new(File::open(path)?)?;
        let window = Window { inner: &src, start, len: size.min(src.size().saturating_sub(start)) };
        scan_hdf5(&window, limits, prefix, r);
    } else if size <= MAX_INFLATED_WEIGHTS {
        match read_member(zip, i, MAX_INFLATED_WEIGHTS, limits.max_zip_ratio)? {
            Ok(b) => scan_hdf5(b.as_slice(), limits, prefix, r),
            Err(e) => r.errors.push(format!("model.weights.h5: {e}")),
        }
    } else {
        r.errors.push(format!("model.weights.h5 is compressed and {size} bytes; its HDF5 structure was not checked"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn traversal_names_are_refused() {
        for bad in ["../x", "a/../../x", "/etc/passwd", "..\\x", "C:/x", "a\0b"] {
            assert!(traversal_reason(bad).is_some(), "{bad}");
        }
        for ok in ["config.json", "assets/vocab.txt", "a..b/c"] {
            assert!(traversal_reason(ok).is_none(), "{ok}");
        }
    }

    fn zip_with(entries: &[(&str, Vec<u8>)]) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".keras").tempfile().unwrap();
        {
            let mut z = zip::ZipWriter::new(f.as_file_mut());
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            for (name, data) in entries {
                z.start_file(*name, opts).unwrap();
                z.write_all(data).unwrap();
            }
            z.finish().unwrap();
        }
        f
    }

    fn report(f: &tempfile::NamedTempFile) -> ScanReport {
        let mut r = ScanReport::new(f.path(), Format::KerasZip);
        scan(f.path(), &Limits::default(), &mut r);
        r
    }

    #[test]
    fn bomb_config_is_reported_and_not_inflated() {
        let f = zip_with(&[("config.json", vec![b' '; 8 << 20])]);
        let r = report(&f);
        assert!(r.findings.iter().any(|x| x.kind == "zip-bomb"), "{r:?}");
        assert!(!r.errors.is_empty(), "an unread config is never clean");
    }

    #[test]
    fn traversal_entry_is_critical_and_config_still_scanned() {
        let cfg = br#"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "Evil", "config": {"name": "e"}}]}}"#;
        let f = zip_with(&[("config.json", cfg.to_vec()), ("../../escape", b"x".to_vec())]);
        let r = report(&f);
        assert!(r.findings.iter().any(|x| x.kind == "zip-path-traversal" && x.severity == Severity::Critical), "{r:?}");
        assert!(r.findings.iter().any(|x| x.kind == "custom-object"), "{r:?}");
    }

    #[test]
    fn too_many_entries_is_an_error() {
        let entries: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("f{i}"), Vec::new())).collect();
        let refs: Vec<(&str, Vec<u8>)> = entries.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
        let f = zip_with(&refs);
        let mut r = ScanReport::new(f.path(), Format::KerasZip);
        scan(f.path(), &Limits { max_zip_entries: 10, ..Limits::default() }, &mut r);
        assert!(r.errors.iter().any(|e| e.contains("entries")), "{r:?}");
    }
}
