//! The output side: tensors (metadata and element bytes drawn from the input) streamed into a
//! `JsonSink` and a `Preview` in arbitrary chunks, as `session::receive_result` does after
//! `TensorsHeader::validate`. Asserts the JSON file is exactly
//! `{"name": <numpy tolist() nesting of the shape>, …}` (so valid JSON whose nesting matches
//! the shape), the preview holds the first values, `encode(decode(b)) == b` for every element
//! that decodes to a number, and sandload's `.npy` header parses back to the same tensor.
//! Once per process: `f16_to_f32` checked on all 65 536 halves against IEEE 754, and
//! float16 values re-encoded.
//!
//! `SANDLOAD_FUZZ_KNOWN_BUGS=json-empty-nesting` accepted the wrong nesting of zero-element
//! tensors of rank >= 2 before it was fixed (docs/FUZZING.md); it is no longer needed.
#![no_main]
use std::sync::Once;

use serde_json::Value;
use sandload_fuzz::broker::{DType, TensorMeta};
use sandload_fuzz::support;
use sandload_fuzz::tensors::input::parse_npy_header;
use sandload_fuzz::tensors::output::{npy_header, JsonSink, Preview, Sink};
use sandload_fuzz::tensors::values::{decode, encode, f16_to_f32};

const DTYPES: [DType; 12] = DType::ALL;

/// Bytes of the input, then zeros: every input decodes to some tensors.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

struct Tensor {
    meta: TensorMeta,
    data: Vec<u8>,
    chunks: Vec<usize>,
}

fn tensors(c: &mut Cursor) -> (Vec<Tensor>, usize) {
    let n = 1 + c.byte() % 4;
    let preview = (c.byte() % 8) as usize;
    let mut out = Vec::new();
    for _ in 0..n {
        let dtype = DTYPES[(c.byte() % 12) as usize];
        let rank = c.byte() % 5;
        // Small dims keep each input cheap; 250.. are large dims, usable beside a zero.
        let shape: Vec<u64> = (0..rank)
            .map(|_| match c.byte() {
                b @ 0..=249 => (b % 7) as u64,
                b => 1 << (8 * (b - 249)),
            })
            .collect();
        let name_len = (c.byte() % 6) as usize;
        let name = String::from_utf8_lossy(&c.bytes(name_len)).into_owned();
        let meta = TensorMeta { name, dtype, shape };
        // validate() has bounded the sum of byte lengths by max_payload before any write.
        let len = match meta.byte_len() {
            Some(l) if l <= 64 << 10 => l as usize,
            _ => return (out, preview),
        };
        let data = c.bytes(len);
        let mut chunks = Vec::new();
        let mut left = len;
        while left > 0 {
            let k = (1 + c.byte() as usize % 13).min(left);
            chunks.push(k);
            left -= k;
        }
        out.push(Tensor { meta, data, chunks });
    }
    (out, preview)
}

/// numpy's `tolist()`: nested by shape; a zero dimension is an empty list at that level.
fn nest(shape: &[u64], vals: &mut impl Iterator<Item = Value>) -> Value {
    match shape.split_first() {
        None => vals.next().expect("one value per element"),
        Some((d, rest)) => Value::Array((0..*d).map(|_| nest(rest, vals)).collect()),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static EXHAUSTIVE: Once = Once::new();
    EXHAUSTIVE.call_once(all_halves);
    let (ts, limit) = tensors(&mut Cursor(data));
    if ts.is_empty() {
        return;
    }
    let path = support::scratch("output.json");
    // An empty tensor whose leading dimensions would nest more than 2^20 empty lists is refused
    // by the sink (they cost the child no payload bytes); check that, and build no expectation.
    for t in &ts {
        let lists = t.meta.shape.iter().take_while(|d| **d != 0).try_fold(1u64, |a, d| a.checked_mul(*d));
        if t.meta.elements() == Some(0) && lists.is_none_or(|n| n > 1 << 20) {
            let mut sink = JsonSink::create(&path).expect("scratch file");
            sink.begin(&t.meta).unwrap();
            assert!(sink.finish().is_err(), "{:?} must be refused", t.meta.shape);
            return;
        }
    }
    let mut sink = JsonSink::create(&path).expect("scratch file");
    let mut preview = Preview::new(limit);
    let mut expected = String::from("{");
    for (k, t) in ts.iter().enumerate() {
        sink.begin(&t.meta).unwrap();
        preview.begin(&t.meta).unwrap();
        let mut at = 0;
        for &n in &t.chunks {
            sink.write(&t.data[at..at + n]).unwrap();
            preview.write(&t.data[at..at + n]).unwrap();
            at += n;
        }
        let size = t.meta.dtype.size() as usize;
        let values: Vec<Value> = t.data.chunks_exact(size).map(|b| decode(t.meta.dtype, b)).collect();
        for (b, v) in t.data.chunks_exact(size).zip(&values) {
            round_trip(t.meta.dtype, b, v);
        }
        let (pm, pv) = &preview.tensors[k];
        assert_eq!(pm, &t.meta);
        assert_eq!(pv[..], values[..values.len().min(limit)]);

        let nested = if support::known_bug("json-empty-nesting") && values.is_empty() && t.meta.shape.len() >= 2 {
            let r = t.meta.shape.len();
            serde_json::from_str(&format!("{}{}", "[".repeat(r), "]".repeat(r))).unwrap()
        } else {
            nest(&t.meta.shape, &mut values.into_iter())
        };
        if k > 0 {
            expected.push(',');
        }
        expected += &serde_json::to_string(&t.meta.name).unwrap();
        expected.push(':');
        expected += &serde_json::to_string(&nested).unwrap();

        if t.meta.shape.len() <= 32 {
            let (dtype, shape) = parse_npy_header(&npy_header(&t.meta)[..]).expect("own .npy header");
            assert_eq!((dtype, &shape), (t.meta.dtype, &t.meta.shape));
        }
    }
    expected += "}\n";
    sink.finish().unwrap();
    drop(sink);
    let got = std::fs::read_to_string(&path).expect("JsonSink writes UTF-8");
    serde_json::from_str::<Value>(&got).unwrap_or_else(|e| panic!("invalid JSON ({e}): {got}"));
    let shapes: Vec<_> = ts.iter().map(|t| (&t.meta.shape, t.meta.dtype)).collect();
    assert_eq!(got, expected, "shapes {shapes:?}");
});

/// A value that decoded to a number encodes back to the same bytes (bools to 0/1).
fn round_trip(dtype: DType, b: &[u8], v: &Value) {
    let mut out = Vec::new();
    match v {
        Value::String(s) => {
            assert!(matches!(dtype, DType::Float16 | DType::Float32 | DType::Float64), "{dtype:?} gave {s}");
            assert!(["NaN", "inf", "-inf"].contains(&s.as_str()), "{s}");
        }
        Value::Bool(x) => {
            assert_eq!(dtype, DType::Bool);
            encode(dtype, v, &mut out).unwrap();
            assert_eq!(out, [*x as u8]);
        }
        _ => {
            encode(dtype, v, &mut out).unwrap_or_else(|e| panic!("{dtype:?} {b:?} decoded to {v} which does not encode: {e}"));
            assert_eq!(out, b, "{dtype:?} via {v}");
        }
    }
}

/// f16_to_f32 on every half against the IEEE 754 definition, and f32_to_f16 back.
fn all_halves() {
    for h in 0..=u16::MAX {
        let (s, e, f) = (if h >> 15 == 1 { -1.0 } else { 1.0 }, ((h >> 10) & 0x1f) as i32, (h & 0x3ff) as f64);
        let want = match e {
            0 => s * f * 2f64.powi(-24),
            0x1f if f == 0.0 => s * f64::INFINITY,
            0x1f => f64::NAN,
            _ => s * (1024.0 + f) * 2f64.powi(e - 25),
        };
        let got = f16_to_f32(h) as f64;
        assert!(got == want || (got.is_nan() && want.is_nan()), "half {h:#06x}: {got} != {want}");
        if !want.is_nan() {
            assert_eq!(got.is_sign_negative(), h >> 15 == 1, "half {h:#06x} sign");
        }
        let v = decode(DType::Float16, &h.to_le_bytes());
        if v.is_number() {
            let mut out = Vec::new();
            encode(DType::Float16, &v, &mut out).unwrap();
            assert_eq!(out, h.to_le_bytes(), "half {h:#06x} via {v}");
        }
    }
}
