//! Input tensors from the user's files. Every file is checked completely before the sandbox
//! starts (exit 2 on any problem): a truncated `.npy`, an object or pickled array (never
//! unpickled), Fortran order, big-endian data, a `.npz` entry whose sizes disagree.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::broker::DType;
use crate::exit::Failure;

const MAX_NPY_HEADER: u64 = 1 << 20;
const MAX_JSON_FILE: u64 = 256 << 20;
const MAX_JSON_DEPTH: usize = 32;

#[derive(Debug, Clone)]
pub enum Source {
    /// Raw bytes at `offset` in a `.npy` file.
    Npy { path: PathBuf, offset: u64 },
    /// Entry `index` of a `.npz` archive; the data follows its `.npy` header.
    Npz { path: PathBuf, index: usize },
    /// Values from a JSON file, converted to the model's dtype when sent.
    Json { values: Vec<Value> },
    /// Raw little-endian bytes already in memory (`serve` requests), checked by the caller.
    Bytes(std::sync::Arc<Vec<u8>>),
}

#[derive(Debug, Clone)]
pub struct Input {
    /// `None`: matched to the model's inputs by position.
    pub name: Option<String>,
    /// `None` for JSON (the model's declared dtype is used).
    pub dtype: Option<DType>,
    pub shape: Vec<u64>,
    pub source: Source,
}

impl Input {
    pub fn byte_len(&self, dtype: DType) -> Option<u64> {
        self.shape.iter().try_fold(dtype.size(), |a, d| a.checked_mul(*d))
    }
}

/// Parses every `-i [NAME=]PATH`.
pub fn load_all(specs: &[String]) -> Result<Vec<Input>, Failure> {
    let mut out = Vec::new();
    for spec in specs {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) if !n.is_empty() && !n.contains('/') => (Some(n.to_string()), PathBuf::from(p)),
            _ => (None, PathBuf::from(spec)),
        };
        let fail = |why: String| Failure::usage(format!("input {}: {why}", path.display()));
        let meta = std::fs::metadata(&path).map_err(|e| fail(e.to_string()))?;
        if !meta.is_file() {
            return Err(fail("not a regular file".into()));
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "npy" => out.push(read_npy(&path, name).map_err(fail)?),
            "npz" => out.extend(read_npz(&path, name.as_deref()).map_err(fail)?),
            "json" => out.extend(read_json(&path, name, meta.len()).map_err(fail)?),
            _ => return Err(fail("use a .npy, .npz or .json file".into())),
        }
    }
    let mut names: Vec<&str> = out.iter().filter_map(|i| i.name.as_deref()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Failure::usage(format!("input {:?} is given twice", w[0])));
    }
    Ok(out)
}

/// Parses an npy header from a bounded reader; npyz is a well-kept parser, and the bound plus
/// catch_unwind keep a hostile header from allocating or panicking its way through.
pub fn parse_npy_header<R: Read>(mut r: R) -> Result<(DType, Vec<u64>), String> {
    // Read the header ourselves first (bounded) so the reader ends exactly at the data and
    // pickled object arrays get a clear refusal rather than a parse error.
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre).map_err(|_| "not a .npy file (too short)".to_string())?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let len_bytes = if pre[6] == 1 { 2 } else { 4 };
    let mut lb = [0u8; 4];
    r.read_exact(&mut lb[..len_bytes]).map_err(|_| "truncated .npy header".to_string())?;
    let hlen = u32::from_le_bytes(lb) as u64;
    if hlen > MAX_NPY_HEADER {
        return Err(format!(".npy header of {hlen} bytes is implausibly large"));
    }
    let mut text = vec![0u8; hlen as usize];
    r.read_exact(&mut text).map_err(|_| "truncated .npy header".to_string())?;
    let t = String::from_utf8_lossy(&text);
    // npyz's header parser is exponential in bracket nesting (a 41-byte header with 30 '['
    // ran for minutes); numpy writes depth 2 ({'shape': (..)}), so refuse anything deeper than 4.
    if bracket_depth(&t) > 4 {
        return Err("malformed .npy header (nested too deeply)".into());
    }
    if t.contains("'|O'") || t.contains("'<O'") || t.contains("'>O'") || t.contains("'O'") {
        return Err("object arrays would need unpickling, which sandload never does".into());
    }
    let mut whole = pre.to_vec();
    whole.extend_from_slice(&lb[..len_bytes]);
    whole.extend_from_slice(&text);
    let header = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| npyz::NpyHeader::from_reader(&whole[..])))
        .map_err(|_| "malformed .npy header".to_string())?
        .map_err(|e| format!("malformed .npy header: {e}"))?;
    let ts = match header.dtype() {
        npyz::DType::Plain(ts) => ts,
        _ => return Err("structured arrays are not tensors".into()),
    };
    let kind = ts.type_char().to_str();
    if kind == "O" {
        return Err("object arrays would need unpickling, which sandload never does".into());
    }
    if ts.endianness().to_str() == ">" && ts.size_field() > 1 {
        return Err("big-endian data; save it little-endian (arr.astype(arr.dtype.newbyteorder('<')))".into());
    }
    let dtype = DType::from_kind_size(kind.chars().next().unwrap_or('?'), ts.size_field())
        .ok_or_else(|| format!("dtype {kind}{} is not a tensor type sandload carries", ts.size_field()))?;
    if header.order() != npyz::Order::C {
        return Err("Fortran-ordered array; save it with np.ascontiguousarray".into());
    }
    Ok((dtype, header.shape().to_vec()))
}

/// Deepest nesting of ([{ outside quoted strings.
fn bracket_depth(s: &str) -> usize {
    let (mut depth, mut max, mut quote) = (0usize, 0usize, None);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => {
                depth += 1;
                max = max.max(depth);
            }
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn read_npy(path: &Path, name: Option<String>) -> Result<Input, String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let (dtype, shape) = parse_npy_header(&mut f)?;
    let offset = f.stream_position().map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let input = Input { name, dtype: Some(dtype), shape, source: Source::Npy { path: path.into(), offset } };
    let need = input.byte_len(dtype).ok_or("shape overflows")?;
    if len - offset != need {
        return Err(format!(
            "truncated or padded: the header promises {need} data bytes, the file has {}",
            len - offset
        ));
    }
    Ok(input)
}

fn read_npz(path: &Path, only: Option<&str>) -> Result<Vec<Input>, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| format!("not a valid .npz: {e}"))?;
    if zip.len() > 1024 {
        return Err("more than 1024 arrays".into());
    }
    let mut out = Vec::new();
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).map_err(|e| e.to_string())?;
        let Some(name) = entry.name().strip_suffix(".npy").map(str::to_string) else { continue };
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let declared = entry.size();
        let mut counted = CountingReader { inner: &mut entry, n: 0 };
        let (dtype, shape) = parse_npy_header(&mut counted).map_err(|e| format!("{name}: {e}"))?;
        let header_len = counted.n;
        let input = Input {
            name: Some(name.clone()),
            dtype: Some(dtype),
            shape,
            source: Source::Npz { path: path.into(), index },
        };
        let need = input.byte_len(dtype).ok_or("shape overflows")?;
        if header_len.checked_add(need) != Some(declared) {
            return Err(format!(
                "{name}: the entry holds {} data bytes, the header promises {need}",
                declared.saturating_sub(header_len)
            ));
        }
        // Read the data once now, so a corrupt deflate stream or a bad CRC is a usage error
        // before the sandbox starts rather than a failure halfway through sending.
        let got = std::io::copy(&mut (&mut counted).take(need.saturating_add(1)), &mut std::io::sink())
            .map_err(|e| format!("{name}: {e}"))?;
        let mut rest = [0u8; 1];
        let extra = counted.read(&mut rest).map_err(|e| format!("{name}: {e}"))?;
        if got != need || extra != 0 {
            return Err(format!("{name}: the entry holds {got} data bytes, the header promises {need}"));
        }
        out.push(input);
    }
    if let Some(o) = only {
        if out.is_empty() {
            return Err(format!("no array named {o:?} in the archive"));
        }
    }
    Ok(out)
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

fn read_json(path: &Path, name: Option<String>, len: u64) -> Result<Vec<Input>, String> {
    if len > MAX_JSON_FILE {
        return Err(format!("JSON inputs are limited to {} MiB; use .npy", MAX_JSON_FILE >> 20));
    }
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| format!("invalid JSON: {e}"))?;
    match v {
        Value::Object(map) if name.is_none() => map.into_iter().map(|(k, v)| from_nested(Some(k), v)).collect(),
        v @ (Value::Array(_) | Value::Number(_) | Value::Bool(_)) => Ok(vec![from_nested(name, v)?]),
        _ => Err("expected {\"name\": nested list} or a nested list".into()),
    }
}

/// Flattens a rectangular nested list, inferring its shape.
pub fn from_nested(name: Option<String>, v: Value) -> Result<Input, String> {
    let mut shape = Vec::new();
    let mut cur = &v;
    while let Value::Array(items) = cur {
        if shape.len() >= MAX_JSON_DEPTH {
            return Err(format!("nested deeper than {MAX_JSON_DEPTH}"));
        }
        shape.push(items.len() as u64);
        match items.first() {
            Some(first) => cur = first,
            None => break,
        }
    }
    let mut values = Vec::new();
    let label = name.clone().unwrap_or_else(|| "input".into());
    flatten(&v, &shape, 0, &mut values).map_err(|e| format!("{label}: {e}"))?;
    Ok(Input { name, dtype: None, shape, source: Source::Json { values } })
}

fn flatten(v: &Value, shape: &[u64], depth: usize, out: &mut Vec<Value>) -> Result<(), String> {
    match (v, shape.get(depth)) {
        (Value::Array(items), Some(n)) if items.len() as u64 == *n => {
            items.iter().try_for_each(|i| flatten(i, shape, depth + 1, out))
        }
        (Value::Number(_) | Value::Bool(_), None) => {
            out.push(v.clone());
            Ok(())
        }
        _ => Err("not a rectangular array of numbers".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nested_lists_flatten_with_their_shape() {
        let i = from_nested(None, serde_json::json!([[1, 2, 3], [4, 5, 6]])).unwrap();
        assert_eq!(i.shape, vec![2, 3]);
        assert!(from_nested(None, serde_json::json!([[1, 2], [3]])).is_err());
        assert!(from_nested(None, serde_json::json!([["a"]])).is_err());
    }

    #[test]
    fn deeply_nested_npy_headers_are_refused_fast() {
        // 41 bytes that kept npyz busy for minutes (found by fuzz/input_npy).
        let mut h = b"\x93NUMPY\x01\x00".to_vec();
        let text = format!("{{{}\n", "[".repeat(30));
        h.extend((text.len() as u16).to_le_bytes());
        h.extend(text.as_bytes());
        let t = std::time::Instant::now();
        assert!(parse_npy_header(&h[..]).is_err());
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn object_arrays_are_refused() {
        let mut h = b"\x93NUMPY\x01\x00".to_vec();
        let dict = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }";
        let mut text = dict.to_vec();
        while (10 + text.len() + 1) % 64 != 0 {
            text.push(b' ');
        }
        text.push(b'\n');
        h.extend((text.len() as u16).to_le_bytes());
        h.extend(text);
        let e = parse_npy_header(&h[..]).unwrap_err();
        assert!(e.contains("unpickling"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn npy_header_parser_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend(tail);
            let _ = parse_npy_header(&b[..]);
        }

        #[test]
        fn npy_header_dict_fuzz(descr in "[<>|]?[a-zA-Z][0-9]{0,3}", dims in proptest::collection::vec(any::<u64>(), 0..6)) {
            let shape: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}", shape.join(","));
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend((dict.len() as u16).to_le_bytes());
            b.extend(dict.as_bytes());
            let _ = parse_npy_header(&b[..]);
        }
    }
}
