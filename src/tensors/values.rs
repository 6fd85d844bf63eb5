//! Little-endian element bytes to JSON values and back, per broker dtype.

use serde_json::Value;

use crate::broker::DType;

/// IEEE 754 half to single precision (exact: every half is a float).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Single to half precision, round to nearest even (for JSON inputs to float16 models).
pub fn f32_to_f16(v: f32) -> u16 {
    let x = v.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xff) as i32;
    let mut man = x & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        man |= 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = man & ((1 << shift) - 1);
        let mut r = (man >> shift) as u16;
        if rest > half || (rest == half && r & 1 == 1) {
            r += 1;
        }
        return sign | r;
    }
    let rest = man & 0x1fff;
    let mut r = ((e as u32) << 10 | (man >> 13)) as u16;
    if rest > 0x1000 || (rest == 0x1000 && r & 1 == 1) {
        r += 1;
    }
    sign | r
}

/// Decodes one element; `b` has exactly `dtype.size()` bytes.
pub fn decode(dtype: DType, b: &[u8]) -> Value {
    let f = |v: f64| serde_json::Number::from_f64(v).map(Value::Number).unwrap_or_else(|| Value::String(v.to_string()));
    match dtype {
        DType::Bool => Value::Bool(b[0] != 0),
        DType::Int8 => Value::from(b[0] as i8),
        DType::Uint8 => Value::from(b[0]),
        DType::Int16 => Value::from(i16::from_le_bytes([b[0], b[1]])),
        DType::Uint16 => Value::from(u16::from_le_bytes([b[0], b[1]])),
        DType::Int32 => Value::from(i32::from_le_bytes(b.try_into().expect("4"))),
        DType::Uint32 => Value::from(u32::from_le_bytes(b.try_into().expect("4"))),
        DType::Int64 => Value::from(i64::from_le_bytes(b.try_into().expect("8"))),
        DType::Uint64 => Value::from(u64::from_le_bytes(b.try_into().expect("8"))),
        DType::Float16 => f(f16_to_f32(u16::from_le_bytes([b[0], b[1]])) as f64),
        DType::Float32 => f(f32::from_le_bytes(b.try_into().expect("4")) as f64),
        DType::Float64 => f(f64::from_le_bytes(b.try_into().expect("8"))),
    }
}

/// Encodes a JSON number/bool as `dtype` (used for JSON inputs, converted to what the model
/// declares). Out-of-range integers are errors, not wraps.
pub fn encode(dtype: DType, v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    let num =
        || v.as_f64().or_else(|| v.as_bool().map(|b| b as u8 as f64)).ok_or_else(|| format!("{v} is not a number"));
    let int = |lo: f64, hi: f64| -> Result<i128, String> {
        let x = num()?;
        if x.fract() != 0.0 || x < lo || x > hi {
            return Err(format!("{x} does not fit {}", dtype.name()));
        }
        Ok(x as i128)
    };
    match dtype {
        DType::Bool => out.push((num()? != 0.0) as u8),
        DType::Int8 => out.extend((int(-128.0, 127.0)? as i8).to_le_bytes()),
        DType::Uint8 => out.extend((int(0.0, 255.0)? as u8).to_le_bytes()),
        DType::Int16 => out.extend((int(-32768.0, 32767.0)? as i16).to_le_bytes()),
        DType::Uint16 => out.extend((int(0.0, 65535.0)? as u16).to_le_bytes()),
        DType::Int32 => out.extend((int(i32::MIN as f64, i32::MAX as f64)? as i32).to_le_bytes()),
        DType::Uint32 => out.extend((int(0.0, u32::MAX as f64)? as u32).to_le_bytes()),
        DType::Int64 => out.extend((v.as_i64().ok_or_else(|| format!("{v} is not an int64"))?).to_le_bytes()),
        DType::Uint64 => out.extend((v.as_u64().ok_or_else(|| format!("{v} is not a uint64"))?).to_le_bytes()),
        DType::Float16 => out.extend(f32_to_f16(num()? as f32).to_le_bytes()),
        DType::Float32 => out.extend((num()? as f32).to_le_bytes()),
        DType::Float64 => out.extend(num()?.to_le_bytes()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_round_trips() {
        for v in [0.0f32, 1.0, -2.5, 65504.0, 0.000061035156, 5.96e-8] {
            let h = f32_to_f16(v);
            assert!((f16_to_f32(h) - v).abs() <= v.abs() * 1e-3 + 1e-7, "{v}");
        }
        assert!(f16_to_f32(f32_to_f16(f32::NAN)).is_nan());
    }

    #[test]
    fn integers_out_of_range_are_errors() {
        let mut out = Vec::new();
        assert!(encode(DType::Int8, &Value::from(300), &mut out).is_err());
        assert!(encode(DType::Uint8, &Value::from(-1), &mut out).is_err());
        assert!(encode(DType::Int32, &Value::from(1.5), &mut out).is_err());
    }
}
