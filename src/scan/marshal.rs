//! Decoder for CPython `marshal` data as Keras stores Lambda bytecode
//! (`func_dump`: base64 of `marshal.dumps(code)`). It never executes anything;
//! it only recovers names and constants. marshal has no version marker, so the
//! code-object layout (3.7, 3.8–3.10, 3.11–3.13) is detected by trying each
//! and keeping the one that consumes the input exactly.

use std::collections::HashSet;
use std::rc::Rc;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MarshalError {
    #[error("truncated marshal data")]
    Truncated,
    #[error("unknown marshal type byte {0:#04x}")]
    BadType(u8),
    #[error("negative or oversized length {0}")]
    BadLength(i64),
    #[error("bad back-reference {0}")]
    BadRef(u32),
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("more than {MAX_NODES} objects")]
    TooMany,
    #[error("trailing bytes after the code object")]
    Trailing,
    #[error("top-level object is not a code object")]
    NotCode,
}

const MAX_DEPTH: usize = 100;
const MAX_NODES: usize = 200_000;

/// A decoded value; containers share children through `Rc` so that
/// back-references cost nothing to copy.
#[derive(Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    BigInt,
    Float(f64),
    Complex,
    Bytes(Vec<u8>),
    Str(String),
    Seq(Vec<Rc<Value>>),
    Dict(Vec<(Rc<Value>, Rc<Value>)>),
    Code(Box<Code>),
    Other,
}

#[derive(Debug)]
pub struct Code {
    pub consts: Rc<Value>,
    pub names: Rc<Value>,
}

/// Which CPython code-object layout matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 3.7: five int32 fields, then 11 objects around `firstlineno`.
    Py37,
    /// 3.8–3.10: adds `co_posonlyargcount`.
    Py38To310,
    /// 3.11–3.13: `co_localsplusnames`/`kinds`, `qualname`, exception table.
    Py311Plus,
}

impl Layout {
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Py37 => "3.7",
            Layout::Py38To310 => "3.8-3.10",
            Layout::Py311Plus => "3.11-3.13",
        }
    }
}

/// Decodes `data` as one marshalled code object, trying every layout.
pub fn decode_code(data: &[u8]) -> Result<(Layout, Rc<Value>), MarshalError> {
    let mut last = MarshalError::NotCode;
    for layout in [Layout::Py311Plus, Layout::Py38To310, Layout::Py37] {
        let mut r = Reader { b: data, pos: 0, refs: Vec::new(), layout, nodes: 0 };
        match r.object(0) {
            Ok(v) if r.pos != data.len() => {
                last = if matches!(*v, Value::Code(_)) { MarshalError::Trailing } else { MarshalError::NotCode }
            }
            Ok(v) if matches!(*v, Value::Code(_)) => return Ok((layout, v)),
            Ok(_) => last = MarshalError::NotCode,
            Err(e) => last = e,
        }
    }
    Err(last)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    refs: Vec<Option<Rc<Value>>>,
    layout: Layout,
    nodes: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], MarshalError> {
        let end = self.pos.checked_add(n).ok_or(MarshalError::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(MarshalError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, MarshalError> {
        Ok(self.take(1)?[0])
    }
    fn i32(&mut self) -> Result<i32, MarshalError> {
        let s = self.take(4)?;
        Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// A length, checked against what is left so that no claimed size is
    /// allocated before the bytes exist (each element needs >= 1 byte).
    fn count(&mut self, n: i64) -> Result<usize, MarshalError> {
        if n < 0 || n as u64 > (self.b.len() - self.pos) as u64 {
            return Err(MarshalError::BadLength(n));
        }
        Ok(n as usize)
    }
    fn len32(&mut self) -> Result<usize, MarshalError> {
        let n = i64::from(self.i32()?);
        self.count(n)
    }

    fn object(&mut self, depth: usize) -> Result<Rc<Value>, MarshalError> {
        if depth > MAX_DEPTH {
            return Err(MarshalError::TooDeep);
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(MarshalError::TooMany);
        }
        let code = self.u8()?;
        let flag_ref = code & 0x80 != 0;
        let ty = code & 0x7f;
        if ty == b'r' {
            let i = self.i32()? as u32;
            return self.refs.get(i as usize).and_then(|r| r.clone()).ok_or(MarshalError::BadRef(i));
        }
        // Reserve the slot first: CPython numbers refs in pre-order.
        let slot = if flag_ref {
            self.refs.push(None);
            Some(self.refs.len() - 1)
        } else {
            None
        };
        let v = Rc::new(self.body(ty, depth)?);
        if let Some(s) = slot {
            self.refs[s] = Some(v.clone());
        }
        Ok(v)
    }

    fn body(&mut self, ty: u8, depth: usize) -> Result<Value, MarshalError> {
        Ok(match ty {
            b'0' | b'N' => Value::None,
            b'F' => Value::Bool(false),
            b'T' => Value::Bool(true),
            b'S' | b'.' => Value::Other,
            b'i' => Value::Int(i64::from(self.i32()?)),
            b'I' => {
                let s = self.take(8)?;
                Value::Int(i64::from_le_bytes(s.try_into().map_err(|_| MarshalError::Truncated)?))
            }
            b'l' => {
                let n = i64::from(self.i32()?).unsigned_abs();
                let n = self.count(i64::try_from(n.saturating_mul(2)).unwrap_or(i64::MAX))?;
                self.take(n)?;
                Value::BigInt
            }
            b'f' => {
                let n = usize::from(self.u8()?);
                let s = std::str::from_utf8(self.take(n)?).unwrap_or("nan").to_string();
                Value::Float(s.parse().unwrap_or(f64::NAN))
            }
            b'g' => Value::Float(f64::from_le_bytes(self.take(8)?.try_into().map_err(|_| MarshalError::Truncated)?)),
            b'x' => {
                for _ in 0..2 {
                    let n = usize::from(self.u8()?);
                    self.take(n)?;
                }
                Value::Complex
            }
            b'y' => {
                self.take(16)?;
                Value::Complex
            }
            b's' => {
                let n = self.len32()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            b't' | b'u' | b'a' | b'A' => {
                let n = self.len32()?;
                Value::Str(String::from_utf8_lossy(self.take(n)?).into_owned())
            }
            b'z' | b'Z' => {
                let n = usize::from(self.u8()?);
                Value::Str(String::from_utf8_lossy(self.take(n)?).into_owned())
            }
            b')' => {
                let n = usize::from(self.u8()?);
                self.seq(n, depth)?
            }
            b'(' | b'[' | b'<' | b'>' => {
                let n = self.len32()?;
                self.seq(n, depth)?
            }
            b'{' => {
                let mut items = Vec::new();
                loop {
                    if self.b.get(self.pos) == Some(&b'0') {
                        self.pos += 1;
                        break;
                    }
                    let k = self.object(depth + 1)?;
                    let v = self.object(depth + 1)?;
                    items.push((k, v));
                }
                Value::Dict(items)
            }
            b'c' => self.code(depth)?,
            other => return Err(MarshalError::BadType(other)),
        })
    }

    fn seq(&mut self, n: usize, depth: usize) -> Result<Value, MarshalError> {
        let mut v = Vec::with_capacity(n.min(self.b.len() - self.pos));
        for _ in 0..n {
            v.push(self.object(depth + 1)?);
        }
        Ok(Value::Seq(v))
    }

    fn code(&mut self, depth: usize) -> Result<Value, MarshalError> {
        let ints = match self.layout {
            Layout::Py37 | Layout::Py311Plus => 5,
            Layout::Py38To310 => 6,
        };
        for _ in 0..ints {
            self.i32()?;
        }
        let mut obj = || self.object(depth + 1);
        let bytecode = obj()?;
        if !matches!(*bytecode, Value::Bytes(_)) {
            return Err(MarshalError::NotCode);
        }
        let consts = obj()?;
        let names = obj()?;
        let varnames = obj()?;
        // Type checks per layout: the layouts overlap (a 3.11 object cut
        // before its exception table reads as a complete 3.7 one), so
        // fields must also have the types CPython writes.
        let seq = |v: &Rc<Value>| matches!(**v, Value::Seq(_));
        let text = |v: &Rc<Value>| matches!(**v, Value::Str(_));
        let name;
        match self.layout {
            Layout::Py37 | Layout::Py38To310 => {
                let freevars = self.object(depth + 1)?;
                let cellvars = self.object(depth + 1)?;
                let filename = self.object(depth + 1)?;
                name = self.object(depth + 1)?;
                self.i32()?;
                let lnotab = self.object(depth + 1)?;
                let ok = seq(&varnames) && seq(&freevars) && seq(&cellvars) && text(&filename) && text(&name);
                if !ok || !matches!(*lnotab, Value::Bytes(_)) {
                    return Err(MarshalError::NotCode);
                }
            }
            Layout::Py311Plus => {
                let kinds = self.object(depth + 1)?;
                let filename = self.object(depth + 1)?;
                name = self.object(depth + 1)?;
                let qualname = self.object(depth + 1)?;
                self.i32()?;
                let linetable = self.object(depth + 1)?;
                let exceptions = self.object(depth + 1)?;
                let ok = seq(&varnames)
                    && matches!(*kinds, Value::Bytes(_))
                    && text(&filename)
                    && text(&name)
                    && text(&qualname);
                if !ok || !matches!(*linetable, Value::Bytes(_)) || !matches!(*exceptions, Value::Bytes(_)) {
                    return Err(MarshalError::NotCode);
                }
            }
        }
        if !matches!(*names, Value::Seq(_)) || !matches!(*consts, Value::Seq(_)) {
            return Err(MarshalError::NotCode);
        }
        Ok(Value::Code(Box::new(Code { consts, names })))
    }
}

/// What a code object (and every nested one) refers to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Refs {
    /// `co_names`: globals, attributes and imported modules it touches.
    pub names: Vec<String>,
    /// String constants (command lines, module names passed to `__import__`).
    pub strings: Vec<String>,
    /// Numeric and boolean constants, shown for arithmetic-looking code.
    pub numbers: Vec<String>,
}

/// Collects names and string constants; shared nodes are visited once.
pub fn references(v: &Rc<Value>) -> Refs {
    let mut seen = HashSet::new();
    let mut out = Refs::default();
    collect(v, false, &mut seen, &mut out);
    out.names.dedup();
    out
}

fn collect(v: &Rc<Value>, as_name: bool, seen: &mut HashSet<*const Value>, out: &mut Refs) {
    if !seen.insert(Rc::as_ptr(v)) && !matches!(**v, Value::Str(_)) {
        return;
    }
    match &**v {
        Value::Str(s) if as_name => push_unique(&mut out.names, s),
        Value::Str(s) => push_unique(&mut out.strings, s),
        Value::Bytes(b) if !as_name => push_unique(&mut out.strings, &String::from_utf8_lossy(b)),
        Value::Int(i) => push_unique(&mut out.numbers, &i.to_string()),
        Value::Float(f) => push_unique(&mut out.numbers, &format!("{f:?}")),
        Value::Bool(b) => push_unique(&mut out.numbers, if *b { "True" } else { "False" }),
        Value::Seq(items) => items.iter().for_each(|i| collect(i, as_name, seen, out)),
        Value::Dict(items) => items.iter().for_each(|(k, v)| {
            collect(k, false, seen, out);
            collect(v, false, seen, out);
        }),
        Value::Code(c) => {
            collect(&c.names, true, seen, out);
            collect(&c.consts, false, seen, out);
        }
        _ => {}
    }
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if v.len() < 4096 && !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// Fallback when no layout fits: printable runs that look like identifiers,
/// as `strings(1)` would find them.
pub fn printable_strings(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for run in data.split(|&b| !(b.is_ascii_graphic() || b == b' ')) {
        if run.len() >= 2 && out.len() < 4096 {
            push_unique(&mut out, &String::from_utf8_lossy(run));
        }
    }
    out
}

#[cfg(test)]
#[path = "marshal_tests.rs"]
mod tests;
