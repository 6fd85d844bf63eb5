//! Output sinks: tensor bytes from the child are streamed straight into the destination and
//! never held whole, so the supervisor's memory stays flat whatever the tensor size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::Value;

use super::values::decode;
use crate::broker::{DType, TensorMeta};

/// Receives tensors one after another: `begin`, `write`* (any chunking), then the next.
pub trait Sink {
    fn begin(&mut self, meta: &TensorMeta) -> std::io::Result<()>;
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()>;
    fn finish(&mut self) -> std::io::Result<()>;
}

/// The `.npy` header for a C-ordered little-endian array (format version 1.0).
pub fn npy_header(meta: &TensorMeta) -> Vec<u8> {
    let shape = match meta.shape.len() {
        1 => format!("({},)", meta.shape[0]),
        _ => format!("({})", meta.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut dict = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}", meta.dtype.npy_descr());
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend((dict.len() as u16).to_le_bytes());
    h.extend(dict.into_bytes());
    h
}

pub struct NpySink {
    out: BufWriter<File>,
    started: bool,
}

impl NpySink {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(NpySink { out: BufWriter::with_capacity(1 << 20, File::create(path)?), started: false })
    }
}

impl Sink for NpySink {
    fn begin(&mut self, meta: &TensorMeta) -> std::io::Result<()> {
        if self.started {
            return Err(std::io::Error::other("a .npy file holds one output; use .npz or .json"));
        }
        self.started = true;
        self.out.write_all(&npy_header(meta))
    }
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.out.write_all(chunk)
    }
    fn finish(&mut self) -> std::io::Result<()> {
        // Flushed, not fsynced: like numpy.save; durability is the caller's choice.
        self.out.flush()
    }
}

pub struct NpzSink {
    /// `None` once finished (the writer is consumed by `finish`).
    zip: Option<zip::ZipWriter<File>>,
}

impl NpzSink {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(NpzSink { zip: Some(zip::ZipWriter::new(File::create(path)?)) })
    }

    fn writer(&mut self) -> std::io::Result<&mut zip::ZipWriter<File>> {
        self.zip.as_mut().ok_or_else(|| std::io::Error::other("the .npz is already finished"))
    }
}

impl Sink for NpzSink {
    fn begin(&mut self, meta: &TensorMeta) -> std::io::Result<()> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        let z = self.writer()?;
        z.start_file(format!("{}.npy", meta.name.replace(['/', '\\'], "_")), opts).map_err(std::io::Error::other)?;
        z.write_all(&npy_header(meta))
    }
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.writer()?.write_all(chunk)
    }
    fn finish(&mut self) -> std::io::Result<()> {
        match self.zip.take() {
            Some(z) => z.finish().map_err(std::io::Error::other).map(drop),
            None => Ok(()),
        }
    }
}

/// Streams `{"name": nested list, ...}` as JSON text, element by element.
pub struct JsonSink {
    out: BufWriter<File>,
    meta: Option<TensorMeta>,
    carry: Vec<u8>,
    index: u64,
    count: usize,
}

impl JsonSink {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(JsonSink {
            out: BufWriter::with_capacity(1 << 20, File::create(path)?),
            meta: None,
            carry: Vec::new(),
            index: 0,
            count: 0,
        })
    }

    fn close_tensor(&mut self) -> std::io::Result<()> {
        if let Some(m) = self.meta.take() {
            if m.shape.is_empty() && self.index == 0 {
                self.out.write_all(b"null")?;
            } else if m.elements() == Some(0) {
                // numpy's nesting for an empty tensor: the lists before the first zero dimension
                // exist ([2, 0] is [[], []]). The child chooses those dimensions and they cost no
                // payload bytes, so their count is bounded.
                let lists = m.shape.iter().take_while(|d| **d != 0).try_fold(1u64, |a, d| a.checked_mul(*d));
                if lists.is_none_or(|n| n > 1 << 20) {
                    return Err(std::io::Error::other(format!(
                        "empty tensor {} with shape {:?} would nest too many lists",
                        m.name, m.shape
                    )));
                }
                write_empty(&mut self.out, &m.shape)?;
            }
        }
        Ok(())
    }

    /// Brackets to open before element `i` and to close after it, from the shape.
    fn element(&mut self, v: &Value) -> std::io::Result<()> {
        let shape = &self.meta.as_ref().expect("begun").shape;
        let i = self.index;
        let mut opens = 0;
        let mut stride = 1u64;
        for d in shape.iter().rev() {
            stride = stride.saturating_mul(*d);
            if i % stride == 0 {
                opens += 1;
            }
        }
        let mut closes = 0;
        let mut stride = 1u64;
        for d in shape.iter().rev() {
            stride = stride.saturating_mul(*d);
            if (i + 1) % stride == 0 {
                closes += 1;
            }
        }
        if i > 0 {
            self.out.write_all(b",")?;
        }
        self.out.write_all(&b"[".repeat(opens))?;
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(&b"]".repeat(closes))?;
        self.index += 1;
        Ok(())
    }
}

impl Sink for JsonSink {
    fn begin(&mut self, meta: &TensorMeta) -> std::io::Result<()> {
        self.close_tensor()?;
        self.out.write_all(if self.count == 0 { b"{" } else { b"," })?;
        serde_json::to_writer(&mut self.out, &meta.name)?;
        self.out.write_all(b":")?;
        self.meta = Some(meta.clone());
        self.carry.clear();
        self.index = 0;
        self.count += 1;
        Ok(())
    }
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        let dtype = self.meta.as_ref().map(|m| m.dtype).unwrap_or(DType::Uint8);
        let size = dtype.size() as usize;
        let mut data = chunk;
        if !self.carry.is_empty() {
            let need = size - self.carry.len();
            let take = need.min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.len() == size {
                let v = decode(dtype, &std::mem::take(&mut self.carry));
                self.element(&v)?;
            }
        }
        let whole = data.len() / size * size;
        for el in data[..whole].chunks_exact(size) {
            self.element(&decode(dtype, el))?;
        }
        self.carry.extend_from_slice(&data[whole..]);
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        self.close_tensor()?;
        self.out.write_all(if self.count == 0 { b"{}\n" } else { b"}\n" })?;
        self.out.flush()
    }
}

fn write_empty(out: &mut impl Write, shape: &[u64]) -> std::io::Result<()> {
    match shape.split_first() {
        Some((0, _)) | None => out.write_all(b"[]"),
        Some((n, rest)) => {
            out.write_all(b"[")?;
            for i in 0..*n {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write_empty(out, rest)?;
            }
            out.write_all(b"]")
        }
    }
}

/// Keeps the first `limit` values of each tensor for the summary and `--json`.
pub struct Preview {
    limit: usize,
    pub tensors: Vec<(TensorMeta, Vec<Value>)>,
    carry: Vec<u8>,
}

impl Preview {
    pub fn new(limit: usize) -> Self {
        Preview { limit, tensors: Vec::new(), carry: Vec::new() }
    }
}

impl Sink for Preview {
    fn begin(&mut self, meta: &TensorMeta) -> std::io::Result<()> {
        self.tensors.push((meta.clone(), Vec::new()));
        self.carry.clear();
        Ok(())
    }
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        let Some((meta, vals)) = self.tensors.last_mut() else { return Ok(()) };
        let size = meta.dtype.size() as usize;
        if vals.len() >= self.limit {
            return Ok(());
        }
        let room = (self.limit - vals.len()) * size;
        let take = (room - self.carry.len().min(room)).min(chunk.len());
        self.carry.extend_from_slice(&chunk[..take]);
        let whole = self.carry.len() / size * size;
        for el in self.carry[..whole].chunks_exact(size) {
            vals.push(decode(meta.dtype, el));
        }
        self.carry.drain(..whole);
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(shape: Vec<u64>) -> TensorMeta {
        TensorMeta { name: "y".into(), dtype: DType::Int32, shape }
    }

    #[test]
    fn json_sink_nests_by_shape_across_chunk_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.json");
        let mut s = JsonSink::create(&p).unwrap();
        s.begin(&meta(vec![2, 3])).unwrap();
        let bytes: Vec<u8> = (1..=6i32).flat_map(|v| v.to_le_bytes()).collect();
        for c in bytes.chunks(3) {
            s.write(c).unwrap();
        }
        let mut empty = meta(vec![0]);
        empty.name = "z".into();
        s.begin(&empty).unwrap();
        s.finish().unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"y": [[1, 2, 3], [4, 5, 6]], "z": []}));
    }

    #[test]
    fn empty_tensors_nest_like_numpy_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for (shape, want) in [(vec![2, 0], "[[],[]]"), (vec![0, 3], "[]"), (vec![2, 1, 0], "[[[]],[[]]]")] {
            let p = dir.path().join("e.json");
            let mut s = JsonSink::create(&p).unwrap();
            s.begin(&meta(shape)).unwrap();
            s.finish().unwrap();
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            assert_eq!(v["y"], serde_json::from_str::<Value>(want).unwrap());
        }
        let mut s = JsonSink::create(&dir.path().join("f.json")).unwrap();
        s.begin(&meta(vec![1 << 40, 0])).unwrap();
        assert!(s.finish().is_err());
    }

    #[test]
    fn npy_header_is_aligned_and_parses_back() {
        let h = npy_header(&meta(vec![2, 3]));
        assert_eq!(h.len() % 64, 0);
        let (dtype, shape) = super::super::input::parse_npy_header(&h[..]).unwrap();
        assert_eq!((dtype, shape), (DType::Int32, vec![2, 3]));
    }
}
