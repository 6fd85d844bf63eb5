//! Tensor descriptions in frame headers and the checks that make them safe to act on.

use serde::{Deserialize, Serialize};

use super::{FrameError, Kind, Limits};

/// The fixed set of element types the broker carries (little-endian on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Float16,
    Float32,
    Float64,
}

impl DType {
    /// Every dtype the broker carries, in a fixed order.
    pub const ALL: [DType; 12] = [
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

    pub fn size(self) -> u64 {
        match self {
            DType::Bool | DType::Int8 | DType::Uint8 => 1,
            DType::Int16 | DType::Uint16 | DType::Float16 => 2,
            DType::Int32 | DType::Uint32 | DType::Float32 => 4,
            DType::Int64 | DType::Uint64 | DType::Float64 => 8,
        }
    }

    /// numpy's type string (`<f4`), used for .npy files.
    pub fn npy_descr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::Int8 => "|i1",
            DType::Int16 => "<i2",
            DType::Int32 => "<i4",
            DType::Int64 => "<i8",
            DType::Uint8 => "|u1",
            DType::Uint16 => "<u2",
            DType::Uint32 => "<u4",
            DType::Uint64 => "<u8",
            DType::Float16 => "<f2",
            DType::Float32 => "<f4",
            DType::Float64 => "<f8",
        }
    }

    /// From numpy's kind character and item size (`f`, 4 → Float32).
    pub fn from_kind_size(kind: char, size: u64) -> Option<DType> {
        Some(match (kind, size) {
            ('b', 1) => DType::Bool,
            ('i', 1) => DType::Int8,
            ('i', 2) => DType::Int16,
            ('i', 4) => DType::Int32,
            ('i', 8) => DType::Int64,
            ('u', 1) => DType::Uint8,
            ('u', 2) => DType::Uint16,
            ('u', 4) => DType::Uint32,
            ('u', 8) => DType::Uint64,
            ('f', 2) => DType::Float16,
            ('f', 4) => DType::Float32,
            ('f', 8) => DType::Float64,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::Uint8 => "uint8",
            DType::Uint16 => "uint16",
            DType::Uint32 => "uint32",
            DType::Uint64 => "uint64",
            DType::Float16 => "float16",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorMeta {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<u64>,
}

impl TensorMeta {
    /// Byte size with checked arithmetic: a shape like [2^40, 2^40] is an error, not a wrap.
    pub fn byte_len(&self) -> Option<u64> {
        self.shape.iter().try_fold(self.dtype.size(), |acc, d| acc.checked_mul(*d))
    }
    pub fn elements(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorsHeader {
    pub tensors: Vec<TensorMeta>,
}

impl TensorsHeader {
    /// Checks every bound and that the byte sizes add up to exactly `payload_len`; returns
    /// each tensor's byte length.
    pub fn validate(&self, kind: Kind, payload_len: u64, limits: &Limits) -> Result<Vec<u64>, FrameError> {
        let bad = |why: String| FrameError::BadHeader { kind, why };
        if self.tensors.len() > limits.max_tensors {
            return Err(bad(format!("{} tensors (limit {})", self.tensors.len(), limits.max_tensors)));
        }
        let mut total: u64 = 0;
        let mut sizes = Vec::with_capacity(self.tensors.len());
        for (i, t) in self.tensors.iter().enumerate() {
            // Duplicate names would collide in .npz/.json outputs and in V2 responses.
            if self.tensors[..i].iter().any(|o| o.name == t.name) {
                return Err(bad(format!("tensor name {:?} appears twice", t.name)));
            }
            if t.name.len() > limits.max_name || t.name.chars().any(|c| c.is_control()) {
                return Err(bad(format!("tensor name of {} bytes or with control characters", t.name.len())));
            }
            if t.shape.len() > limits.max_rank {
                return Err(bad(format!("rank {} (limit {})", t.shape.len(), limits.max_rank)));
            }
            let n = t.byte_len().ok_or_else(|| bad(format!("shape {:?} overflows", t.shape)))?;
            total = total.checked_add(n).ok_or_else(|| bad("total size overflows".into()))?;
            if total > limits.max_payload {
                return Err(FrameError::PayloadTooLarge { got: total, max: limits.max_payload });
            }
            sizes.push(n);
        }
        if total != payload_len {
            return Err(bad(format!("tensors need {total} bytes, frame carries {payload_len}")));
        }
        Ok(sizes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta(shape: Vec<u64>) -> TensorsHeader {
        TensorsHeader { tensors: vec![TensorMeta { name: "y".into(), dtype: DType::Float32, shape }] }
    }

    #[test]
    fn broker_rejects_overflowing_shapes() {
        let l = Limits::with_max_payload(u64::MAX);
        assert!(meta(vec![1 << 40, 1 << 40]).validate(Kind::Result, 0, &l).is_err());
    }

    #[test]
    fn broker_rejects_size_mismatch_and_excess_rank() {
        let l = Limits::with_max_payload(1 << 30);
        assert!(meta(vec![2, 3]).validate(Kind::Result, 24, &l).is_ok());
        assert!(meta(vec![2, 3]).validate(Kind::Result, 23, &l).is_err());
        assert!(meta(vec![1; 33]).validate(Kind::Result, 4, &l).is_err());
    }

    #[test]
    fn broker_rejects_duplicate_tensor_names() {
        let l = Limits::with_max_payload(1 << 30);
        let mut h = meta(vec![1]);
        h.tensors.push(h.tensors[0].clone());
        assert!(h.validate(Kind::Result, 8, &l).is_err());
    }

    #[test]
    fn broker_rejects_unknown_dtypes_and_fields() {
        let h: Result<TensorsHeader, _> =
            serde_json::from_str(r#"{"tensors":[{"name":"x","dtype":"object","shape":[1]}]}"#);
        assert!(h.is_err());
        let h: Result<TensorsHeader, _> =
            serde_json::from_str(r#"{"tensors":[{"name":"x","dtype":"int8","shape":[1],"ptr":1}]}"#);
        assert!(h.is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn validation_never_panics(dims in proptest::collection::vec(any::<u64>(), 0..40), payload in any::<u64>()) {
            let l = Limits::with_max_payload(1 << 32);
            if let Ok(sizes) = meta(dims).validate(Kind::Result, payload, &l) {
                prop_assert_eq!(sizes.iter().sum::<u64>(), payload);
                prop_assert!(payload <= 1 << 32);
            }
        }
    }
}
