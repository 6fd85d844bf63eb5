//! Open Inference Protocol V2 (KServe / Triton) messages: JSON tensors and the binary-tensor
//! extension. Requests are untrusted: sizes, nesting depth, datatypes and shapes are checked
//! against the model's signature before anything reaches a worker (TF Serving crashed on
//! deeply nested JSON: CVE-2025-0649).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::broker::messages::{SigTensor, Signature};
use crate::broker::{DType, TensorMeta};
use crate::tensors::input::{Input, Source};
use crate::tensors::values::{decode, encode};

pub const MAX_JSON_DEPTH: usize = 32;

pub fn v2_name(d: DType) -> &'static str {
    match d {
        DType::Bool => "BOOL",
        DType::Int8 => "INT8",
        DType::Int16 => "INT16",
        DType::Int32 => "INT32",
        DType::Int64 => "INT64",
        DType::Uint8 => "UINT8",
        DType::Uint16 => "UINT16",
        DType::Uint32 => "UINT32",
        DType::Uint64 => "UINT64",
        DType::Float16 => "FP16",
        DType::Float32 => "FP32",
        DType::Float64 => "FP64",
    }
}

pub fn from_v2_name(s: &str) -> Option<DType> {
    DType::ALL.into_iter().find(|d| v2_name(*d) == s)
}

#[derive(Debug, Deserialize)]
pub struct InferRequest {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub parameters: Option<serde_json::Map<String, Value>>,
    pub inputs: Vec<RequestInput>,
    #[serde(default)]
    pub outputs: Option<Vec<RequestOutput>>,
}

#[derive(Debug, Deserialize)]
pub struct RequestInput {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    #[serde(default)]
    pub parameters: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub data: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct RequestOutput {
    pub name: String,
    #[serde(default)]
    pub parameters: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Serialize)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: &'static str,
    pub shape: Vec<i64>,
}

pub fn metadata(t: &SigTensor) -> TensorMetadata {
    TensorMetadata {
        name: t.name.clone(),
        datatype: v2_name(t.dtype),
        shape: t.shape.iter().map(|d| d.map_or(-1, |d| d as i64)).collect(),
    }
}

/// Rejects JSON nested deeper than `max` before serde sees it (strings are skipped).
pub fn check_depth(b: &[u8], max: usize) -> Result<(), String> {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for &c in b {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(format!("JSON nested deeper than {max} levels"));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn param_u64(p: &Option<serde_json::Map<String, Value>>, key: &str) -> Option<u64> {
    p.as_ref()?.get(key)?.as_u64()
}

pub fn param_bool(p: &Option<serde_json::Map<String, Value>>, key: &str) -> bool {
    p.as_ref().and_then(|m| m.get(key)).and_then(Value::as_bool).unwrap_or(false)
}

/// Turns a request into broker inputs, checking every tensor against the signature.
/// `binary` is the request body after the JSON header (binary-tensor extension).
pub fn to_inputs(req: &InferRequest, sig: &Signature, binary: &[u8], max_bytes: u64) -> Result<Vec<Input>, String> {
    if req.inputs.len() != sig.inputs.len() {
        return Err(format!("the model takes {} inputs, the request has {}", sig.inputs.len(), req.inputs.len()));
    }
    let mut offset = 0usize;
    let mut total = 0u64;
    let mut out = Vec::new();
    for ri in &req.inputs {
        let si =
            sig.inputs.iter().find(|s| s.name == ri.name).ok_or_else(|| format!("unexpected input {:?}", ri.name))?;
        let dtype = from_v2_name(&ri.datatype)
            .ok_or_else(|| format!("input {}: unsupported datatype {}", ri.name, ri.datatype))?;
        if dtype != si.dtype {
            return Err(format!(
                "input {}: datatype {} but the model expects {}",
                ri.name,
                ri.datatype,
                v2_name(si.dtype)
            ));
        }
        if ri.shape.len() != si.shape.len() {
            return Err(format!("input {}: rank {} but the model expects {}", ri.name, ri.shape.len(), si.shape.len()));
        }
        let mut shape = Vec::new();
        for (got, want) in ri.shape.iter().zip(&si.shape) {
            let g = u64::try_from(*got).map_err(|_| format!("input {}: negative dimension", ri.name))?;
            if want.is_some_and(|w| w != g) {
                return Err(format!(
                    "input {}: shape {:?} does not fit the model's {:?}",
                    ri.name,
                    ri.shape,
                    metadata(si).shape
                ));
            }
            shape.push(g);
        }
        let meta = TensorMeta { name: ri.name.clone(), dtype, shape: shape.clone() };
        let nbytes = meta.byte_len().ok_or_else(|| format!("input {}: shape overflows", ri.name))?;
        total = total.saturating_add(nbytes);
        if total > max_bytes {
            return Err(format!("request tensors exceed {max_bytes} bytes"));
        }
        let bytes = if let Some(n) = param_u64(&ri.parameters, "binary_data_size") {
            if n != nbytes {
                return Err(format!("input {}: binary_data_size {n} but the shape needs {nbytes} bytes", ri.name));
            }
            let end = offset
                .checked_add(n as usize)
                .filter(|e| *e <= binary.len())
                .ok_or("binary data shorter than declared")?;
            let b = binary[offset..end].to_vec();
            offset = end;
            b
        } else {
            let data = ri.data.as_ref().ok_or_else(|| format!("input {}: no data", ri.name))?;
            let mut flat = Vec::new();
            flatten(data, &mut flat, 0)?;
            if flat.len() as u64 != meta.elements().unwrap_or(u64::MAX) {
                return Err(format!("input {}: {} values for shape {:?}", ri.name, flat.len(), ri.shape));
            }
            let mut b = Vec::with_capacity(nbytes as usize);
            for v in flat {
                encode(dtype, v, &mut b).map_err(|e| format!("input {}: {e}", ri.name))?;
            }
            b
        };
        out.push(Input {
            name: Some(ri.name.clone()),
            dtype: Some(dtype),
            shape,
            source: Source::Bytes(Arc::new(bytes)),
        });
    }
    if offset != binary.len() {
        return Err("binary data longer than the inputs declare".into());
    }
    Ok(out)
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: usize) -> Result<(), String> {
    if depth > MAX_JSON_DEPTH {
        return Err("data nested too deeply".into());
    }
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| flatten(i, out, depth + 1)),
        Value::Number(_) | Value::Bool(_) => {
            out.push(v);
            Ok(())
        }
        _ => Err("data must be numbers or booleans".into()),
    }
}

/// An output tensor as JSON values (for the JSON response form).
pub fn json_data(meta: &TensorMeta, bytes: &[u8]) -> Vec<Value> {
    bytes.chunks_exact(meta.dtype.size() as usize).map(|el| decode(meta.dtype, el)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig() -> Signature {
        Signature {
            inputs: vec![SigTensor { name: "x".into(), dtype: DType::Float32, shape: vec![None, Some(4)] }],
            outputs: vec![],
            load_seconds: 0.0,
        }
    }

    fn req(v: Value) -> InferRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn nested_and_flat_data_are_accepted() {
        for data in [serde_json::json!([1, 2, 3, 4]), serde_json::json!([[1, 2, 3, 4]])] {
            let r =
                req(serde_json::json!({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": data}]}));
            let i = to_inputs(&r, &sig(), &[], 1 << 20).unwrap();
            assert_eq!(i[0].shape, vec![1, 4]);
        }
    }

    #[test]
    fn wrong_shapes_dtypes_and_counts_are_rejected() {
        for (shape, dt, data) in [
            (serde_json::json!([1, 3]), "FP32", serde_json::json!([1, 2, 3])),
            (serde_json::json!([1, 4]), "INT32", serde_json::json!([1, 2, 3, 4])),
            (serde_json::json!([1, 4]), "FP32", serde_json::json!([1, 2, 3])),
            (serde_json::json!([1, 4]), "BYTES", serde_json::json!(["a", "b", "c", "d"])),
            (serde_json::json!([-1, 4]), "FP32", serde_json::json!([1, 2, 3, 4])),
        ] {
            let r = req(serde_json::json!({"inputs": [{"name": "x", "shape": shape, "datatype": dt, "data": data}]}));
            assert!(to_inputs(&r, &sig(), &[], 1 << 20).is_err());
        }
    }

    #[test]
    fn binary_data_must_match_exactly() {
        let r = req(
            serde_json::json!({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}),
        );
        assert!(to_inputs(&r, &sig(), &[0u8; 16], 1 << 20).is_ok());
        assert!(to_inputs(&r, &sig(), &[0u8; 15], 1 << 20).is_err());
        assert!(to_inputs(&r, &sig(), &[0u8; 17], 1 << 20).is_err());
    }

    #[test]
    fn deep_json_is_refused_before_parsing() {
        let deep = "[".repeat(10_000);
        assert!(check_depth(deep.as_bytes(), MAX_JSON_DEPTH).is_err());
        assert!(check_depth(br#"{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}"#, MAX_JSON_DEPTH).is_ok());
    }
}
