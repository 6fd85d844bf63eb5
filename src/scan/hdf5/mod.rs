//! Minimal, bounded, pure-Rust HDF5 reader for Keras `.h5` files: superblock
//! v0–v3, object headers v1/v2, old-style (symbol table) and compact
//! new-style groups, attributes with fixed or variable-length strings. It
//! reads only what a scan needs (root `model_config`/`training_config`, and
//! the structure of every object for storage tricks) and never follows a
//! link out of the file. Assumes the bytes are hostile.

mod group;
mod header;
pub mod io;

use std::collections::HashSet;

use header::{Dtype, Link, Message};
use io::{read_block, Cur, ReadAt};

#[derive(Debug, thiserror::Error)]
pub enum Hdf5Error {
    #[error("no HDF5 signature")]
    NoSignature,
    #[error("read at offset {addr}: {source}")]
    Io { addr: u64, source: std::io::Error },
    #[error("{what} at offset {addr} lies outside the file (truncated or corrupt)")]
    OutOfBounds { what: &'static str, addr: u64 },
    #[error("{what} claims {len} bytes, above the reader's limit")]
    TooLarge { what: &'static str, len: u64 },
    #[error("structure truncated")]
    Truncated,
    #[error("bad signature for {what}")]
    BadSignature { what: &'static str },
    #[error("unsupported HDF5 feature: {0}")]
    Unsupported(&'static str),
    #[error("limit reached: {0}")]
    Limit(&'static str),
}

/// Objects visited per file: a Keras file has a few per layer; a file with
/// millions is hostile or not a Keras model.
const MAX_OBJECTS: usize = 200_000;
/// Group nesting depth.
const MAX_DEPTH: usize = 64;

/// Something structurally suspicious found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Structural {
    ExternalLink { path: String, file: String, target: String },
    SoftLink { path: String, target: String },
    ExternalDataset { path: String, files: Vec<String> },
    VirtualDataset { path: String },
    OversizedDataset { path: String, declared: Option<u64>, file_size: u64 },
}

#[derive(Debug, Default)]
pub struct Hdf5Scan {
    /// Root attributes that hold strings, by name (only the ones asked for).
    pub attrs: Vec<(String, String)>,
    pub structural: Vec<Structural>,
    /// Parts of the file that could not be read: reported as errors.
    pub unread: Vec<String>,
}

/// Offset of the superblock: 0, 512, 1024, 2048, … (a user block may precede it).
pub fn find_signature<R: ReadAt + ?Sized>(src: &R) -> Option<u64> {
    const SIG: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
    let mut off = 0u64;
    while off.checked_add(8)? <= src.size() && off <= 1 << 30 {
        let mut b = [0u8; 8];
        if src.read_exact_at_(&mut b, off).is_ok() && &b == SIG {
            return Some(off);
        }
        off = if off == 0 { 512 } else { off * 2 };
    }
    None
}

struct Ctx<'a, R: ReadAt + ?Sized> {
    src: &'a R,
    so: u8,
    sl: u8,
    base: u64,
    want: &'a [&'a str],
    max_attr: u64,
    visited: HashSet<u64>,
    out: Hdf5Scan,
}

/// Scans the HDF5 file in `src`, collecting the string root attributes named
/// in `want` (each at most `max_attr` bytes).
pub fn scan<R: ReadAt + ?Sized>(src: &R, want: &[&str], max_attr: u64) -> Result<Hdf5Scan, Hdf5Error> {
    let sb_at = find_signature(src).ok_or(Hdf5Error::NoSignature)?;
    let sb = read_block(src, sb_at, 96.min(src.size() - sb_at), "superblock")?;
    let mut c = Cur::new(&sb, 8, 8);
    c.skip(8)?;
    let version = c.u8()?;
    let (so, sl, base, root) = match version {
        0 | 1 => {
            c.skip(4)?;
            let so = c.u8()?;
            let sl = c.u8()?;
            c.skip(1 + 4 + 4)?;
            if version == 1 {
                c.skip(4)?;
            }
            check_sizes(so, sl)?;
            c.so = so;
            c.sl = sl;
            let base = c.addr()?;
            let _free = c.addr()?;
            let _eof = c.addr()?;
            let _driver = c.addr()?;
            let _name = c.addr()?;
            (so, sl, base, c.addr()?)
        }
        2 | 3 => {
            let so = c.u8()?;
            let sl = c.u8()?;
            check_sizes(so, sl)?;
            c.skip(1)?;
            c.so = so;
            c.sl = sl;
            let base = c.addr()?;
            let _ext = c.addr()?;
            let _eof = c.addr()?;
            (so, sl, base, c.addr()?)
        }
        _ => return Err(Hdf5Error::Unsupported("superblock version")),
    };
    let base = if base == u64::MAX { sb_at } else { base };
    let mut cx = Ctx { src, so, sl, base, want, max_attr, visited: HashSet::new(), out: Hdf5Scan::default() };
    // Root must be readable; anything deeper that fails is recorded and skipped.
    cx.visit(root, String::new(), 0, true)?;
    Ok(cx.out)
}

fn check_sizes(so: u8, sl: u8) -> Result<(), Hdf5Error> {
    if ![2, 4, 8].contains(&so) || ![2, 4, 8].contains(&sl) {
        return Err(Hdf5Error::Unsupported("size of offsets/lengths"));
    }
    Ok(())
}

impl<R: ReadAt + ?Sized> Ctx<'_, R> {
    fn abs(&self, addr: u64) -> u64 {
        addr.saturating_add(self.base)
    }

    fn visit(&mut self, addr: u64, path: String, depth: usize, is_root: bool) -> Result<(), Hdf5Error> {
        if depth > MAX_DEPTH {
            return Err(Hdf5Error::Limit("group depth"));
        }
        // Hard links may form cycles and share objects: visit each once.
        if !self.visited.insert(addr) {
            return Ok(());
        }
        if self.visited.len() > MAX_OBJECTS {
            return Err(Hdf5Error::Limit("objects in file"));
        }
        let msgs = header::read_object_header(self.src, self.abs(addr), self.so, self.sl)?;
        let (so, sl) = (self.so, self.sl);
        let shown = if path.is_empty() { "/".to_string() } else { path.clone() };
        let mut children: Vec<(String, u64)> = Vec::new();
        for m in &msgs {
            match m.kind {
                header::MSG_ATTRIBUTE if is_root => self.root_attribute(m)?,
                header::MSG_SYMBOL_TABLE => {
                    let mut c = Cur::new(&m.data, so, sl);
                    let btree = c.addr()?;
                    let heap = c.addr()?;
                    let entries = group::symbol_table(self.src, self.base, btree, heap, so, sl)?;
                    for e in entries {
                        let child = format!("{path}/{}", e.name);
                        match e.soft_target {
                            Some(target) => self.out.structural.push(Structural::SoftLink { path: child, target }),
                            None => children.push((child, e.addr)),
                        }
                    }
                }
                header::MSG_LINK => match header::link(&m.data, so, sl)? {
                    Link::Hard { name, addr } => children.push((format!("{path}/{name}"), addr)),
                    Link::Soft { name, target } => {
                        self.out.structural.push(Structural::SoftLink { path: format!("{path}/{name}"), target })
                    }
                    Link::External { name, file, path: target } => self.out.structural.push(Structural::ExternalLink {
                        path: format!("{path}/{name}"),
                        file,
                        target,
                    }),
                    Link::Other { name, kind } => {
                        self.out.unread.push(format!("{path}/{name}: user-defined link type {kind}"))
                    }
                },
                header::MSG_LINK_INFO | header::MSG_ATTR_INFO
                    if header::dense_heap_addr(&m.data, m.kind, so, sl)? != u64::MAX =>
                {
                    let what = if m.kind == header::MSG_LINK_INFO { "links" } else { "attributes" };
                    self.out.unread.push(format!("{shown}: dense {what} storage (fractal heap) is not read"));
                }
                _ => {}
            }
        }
        self.dataset_checks(&msgs, &shown)?;
        for (child, caddr) in children {
            if let Err(e) = self.visit(caddr, child.clone(), depth + 1, false) {
                if matches!(e, Hdf5Error::Limit(_)) {
                    return Err(e);
                }
                self.out.unread.push(format!("{child}: {e}"));
            }
        }
        Ok(())
    }

    fn root_attribute(&mut self, m: &Message) -> Result<(), Hdf5Error> {
        let a = match header::attribute(&m.data, self.so, self.sl) {
            Ok(a) => a,
            Err(e) => {
                self.out.unread.push(format!("/: attribute: {e}"));
                return Ok(());
            }
        };
        if !self.want.contains(&a.name.as_str()) {
            return Ok(());
        }
        if matches!(&a.dims, Some(d) if d.iter().product::<u64>() == 0) {
            return Ok(());
        }
        let text = match a.dtype {
            Dtype::FixedString { size } => {
                let raw = a.value.get(..size as usize).ok_or(Hdf5Error::Truncated)?;
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                String::from_utf8_lossy(&raw[..end]).into_owned()
            }
            Dtype::VarString => {
                let mut c = Cur::new(a.value, self.so, self.sl);
                let len = u64::from(c.u32()?);
                let coll = c.addr()?;
                let index = c.u32()?;
                if len > self.max_attr {
                    return Err(Hdf5Error::TooLarge { what: "string attribute", len });
                }
                let bytes =
                    group::global_heap_object(self.src, self.abs(coll), index, self.so, self.sl, self.max_attr)?;
                let bytes = bytes.get(..len as usize).unwrap_or(&bytes);
                String::from_utf8_lossy(bytes).into_owned()
            }
            Dtype::Other { .. } => return Ok(()),
        };
        self.out.attrs.push((a.name, text));
        Ok(())
    }

    /// Storage tricks on datasets: CVE-2026-1669 / CVE-2026-12480 (data read
    /// from other files through external storage or virtual datasets) and
    /// CVE-2026-0897 (a declared shape far larger than the file makes the
    /// loader allocate it).
    fn dataset_checks(&mut self, msgs: &[Message], path: &str) -> Result<(), Hdf5Error> {
        let Some(layout) = msgs.iter().find(|m| m.kind == header::MSG_LAYOUT) else { return Ok(()) };
        if header::layout_class(&layout.data)? == 3 {
            self.out.structural.push(Structural::VirtualDataset { path: path.to_string() });
        }
        if let Some(ext) = msgs.iter().find(|m| m.kind == header::MSG_EXTERNAL) {
            let files = group::external_files(self.src, self.base, &ext.data, self.so, self.sl)
                .unwrap_or_else(|e| vec![format!("<unreadable: {e}>")]);
            self.out.structural.push(Structural::ExternalDataset { path: path.to_string(), files });
        }
        let dims = msgs
            .iter()
            .find(|m| m.kind == header::MSG_DATASPACE && !m.is_shared())
            .map(|m| header::dataspace_dims(&m.data, self.so, self.sl))
            .transpose()?
            .flatten();
        let elem = msgs
            .iter()
            .find(|m| m.kind == header::MSG_DATATYPE && !m.is_shared())
            .map(|m| header::datatype(&m.data))
            .transpose()?
            .map(|d| match d {
                Dtype::FixedString { size } | Dtype::Other { size } => u64::from(size),
                Dtype::VarString => 16,
            });
        if let (Some(dims), Some(elem)) = (dims, elem) {
            let declared = dims.iter().try_fold(elem, |acc, &d| acc.checked_mul(d));
            let file_size = self.src.size();
            let limit = file_size.saturating_mul(OVERSIZE_FACTOR).max(OVERSIZE_FLOOR);
            if declared.is_none_or(|d| d > limit) {
                self.out.structural.push(Structural::OversizedDataset { path: path.to_string(), declared, file_size });
            }
        }
        Ok(())
    }
}

/// A dataset may declare more than the file holds (chunked, compressed,
/// never written), but a factor this large only makes a loader allocate.
const OVERSIZE_FACTOR: u64 = 1024;
const OVERSIZE_FLOOR: u64 = 256 << 20;

#[cfg(test)]
mod tests;
