//! A user's `.json` input on arbitrary bytes, through `load_all` (unnamed `PATH` and named
//! `x=PATH`), then every accepted input encoded as each broker dtype the way `send_predict`
//! does. Asserts no panic, a rectangular shape whose product is the value count, and that
//! `values::encode` is exact: integers in range or an error (never a wrap), bools as 0/1, and
//! float16 rounded to nearest-even (checked against an independent table of all halves).
#![no_main]
use std::sync::OnceLock;

use serde_json::Value;
use sandload_fuzz::broker::DType;
use sandload_fuzz::support;
use sandload_fuzz::tensors::input::{load_all, Input, Source};
use sandload_fuzz::tensors::values::{decode, encode};

const DTYPES: [DType; 12] = [
    DType::Bool,
    DType::Int8,
    DType::Int16,
    DType::Int32,
    DType::Int64,
    DType::Uint8,
    DType::Uint16,
    DType::Uint32,
    DType::Uint64,
    DType::Float16,
    DType::Float32,
    DType::Float64,
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = support::scratch("input.json");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let p = path.to_string_lossy().into_owned();
    for spec in [p.clone(), format!("x={p}")] {
        support::reset();
        let loaded = load_all(&[spec]);
        // The Value tree and its flattened copy: tens of bytes per input byte at worst.
        support::check("load_all(.json)", data.len(), 256 * data.len() + (1 << 20), 64 * data.len() + (64 << 10));
        let Ok(inputs) = loaded else { continue };
        for i in &inputs {
            check_input(i);
        }
    }
});

fn check_input(i: &Input) {
    let Source::Json { values } = &i.source else { panic!("a .json gave {:?}", i.source) };
    assert!(i.dtype.is_none());
    assert!(i.shape.len() <= 32, "rank {}", i.shape.len());
    let elements = i.shape.iter().try_fold(1u64, |a, d| a.checked_mul(*d)).expect("counted from real values");
    assert_eq!(elements, values.len() as u64, "shape {:?}", i.shape);
    assert!(values.iter().all(|v| v.is_number() || v.is_boolean()));
    for dtype in DTYPES {
        let mut buf = Vec::new();
        let all = values.iter().try_for_each(|v| encode(dtype, v, &mut buf));
        if all.is_ok() {
            assert_eq!(buf.len() as u64, elements * dtype.size());
        }
        for v in values.iter().take(64) {
            check_element(dtype, v);
        }
    }
}

fn check_element(dtype: DType, v: &Value) {
    let mut out = Vec::new();
    let res = encode(dtype, v, &mut out);
    let x = v.as_f64().or_else(|| v.as_bool().map(|b| b as u8 as f64)).expect("numbers and bools only");
    let range = |lo: f64, hi: f64| x.fract() == 0.0 && x >= lo && x <= hi;
    let fits = match dtype {
        DType::Bool | DType::Float16 | DType::Float32 | DType::Float64 => true,
        DType::Int8 => range(-128.0, 127.0),
        DType::Uint8 => range(0.0, 255.0),
        DType::Int16 => range(-32768.0, 32767.0),
        DType::Uint16 => range(0.0, 65535.0),
        DType::Int32 => range(i32::MIN as f64, i32::MAX as f64),
        DType::Uint32 => range(0.0, u32::MAX as f64),
        DType::Int64 => v.as_i64().is_some(),
        DType::Uint64 => v.as_u64().is_some(),
    };
    assert_eq!(res.is_ok(), fits, "{v} as {dtype:?}: {res:?}");
    if res.is_err() {
        return;
    }
    assert_eq!(out.len() as u64, dtype.size());
    let back = decode(dtype, &out);
    match dtype {
        DType::Bool => assert_eq!(back, Value::Bool(x != 0.0)),
        DType::Int64 | DType::Uint64 => assert_eq!(&back, v),
        DType::Float16 => {
            let h = u16::from_le_bytes([out[0], out[1]]);
            assert_eq!(h, reference_f16(x as f32), "{v} as float16");
        }
        DType::Float32 => {
            let f = x as f32;
            if f.is_finite() {
                assert_eq!(back.as_f64(), Some(f as f64));
            }
        }
        DType::Float64 => assert_eq!(back.as_f64(), Some(x)),
        _ => assert_eq!(back.as_f64(), Some(x), "{v} as {dtype:?}"),
    }
}

/// Every finite non-negative half, by bit pattern, computed from the IEEE 754 definition.
fn halves() -> &'static [f64] {
    static T: OnceLock<Vec<f64>> = OnceLock::new();
    T.get_or_init(|| {
        (0u16..0x7c00)
            .map(|h| {
                let (e, f) = ((h >> 10) as i32, (h & 0x3ff) as f64);
                if e == 0 {
                    f * 2f64.powi(-24)
                } else {
                    (1024.0 + f) * 2f64.powi(e - 25)
                }
            })
            .collect()
    })
}

/// f32 → f16, round to nearest, ties to even, by search rather than bit tricks.
fn reference_f16(v: f32) -> u16 {
    let sign = if v.is_sign_negative() { 0x8000 } else { 0 };
    if v.is_nan() {
        return 0x7e00 | sign; // any NaN; normalised below
    }
    let a = (v as f64).abs();
    if a >= 65520.0 {
        return sign | 0x7c00;
    }
    let t = halves();
    let i = t.partition_point(|h| *h < a);
    let best = if i == t.len() {
        i - 1
    } else if i == 0 || t[i] == a {
        i
    } else {
        let (lo, hi) = (a - t[i - 1], t[i] - a);
        if lo < hi || (lo == hi && (i - 1) % 2 == 0) {
            i - 1
        } else {
            i
        }
    };
    sign | best as u16
}
