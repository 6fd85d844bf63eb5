//! TensorFlow SavedModel directories: `keras_metadata.pb` (the Keras layer
//! configs, with Lambda bytecode) and `saved_model.pb` (the graph, whose ops
//! may read or write files or call back into Python when the model runs).

use std::collections::HashMap;
use std::path::Path;

use super::detect::{read_bounded, scan_json_bytes};
use super::protobuf::{bytes_fields, string_field, ProtoError};
use super::{Finding, Limits, ScanReport, Severity};

/// Ops that call into the host Python interpreter (tf.py_function and kin).
const PYTHON_OPS: &[&str] = &["PyFunc", "PyFuncStateless", "EagerPyFunc"];
/// Ops that read or write arbitrary files when the graph runs.
const FILE_OPS: &[(&str, Severity)] = &[
    ("ReadFile", Severity::High),
    ("WriteFile", Severity::High),
    ("MatchingFiles", Severity::Medium),
    ("ImmutableConst", Severity::Medium),
    ("WholeFileReader", Severity::Medium),
    ("WholeFileReaderV2", Severity::Medium),
    ("TextLineReader", Severity::Medium),
    ("TextLineReaderV2", Severity::Medium),
    ("FixedLengthRecordReader", Severity::Medium),
    ("FixedLengthRecordReaderV2", Severity::Medium),
    ("TFRecordReader", Severity::Medium),
    ("TFRecordReaderV2", Severity::Medium),
    ("LMDBReader", Severity::Medium),
    ("TextLineDataset", Severity::Medium),
    ("TFRecordDataset", Severity::Medium),
    ("FixedLengthRecordDataset", Severity::Medium),
    ("LoadAndRemapMatrix", Severity::Medium),
    ("CreateSummaryFileWriter", Severity::Medium),
    ("DebugIdentity", Severity::Medium),
    ("DebugIdentityV2", Severity::Medium),
    ("DebugNanCount", Severity::Medium),
];
/// Checkpoint ops: normal in the saver, suspicious when their path is a
/// constant baked into the graph (save to / restore from a fixed path).
const CHECKPOINT_OPS: &[&str] =
    &["Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice", "MergeV2Checkpoints"];

pub fn scan_dir(path: &Path, limits: &Limits, r: &mut ScanReport) {
    let dir = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
    let meta = dir.join("keras_metadata.pb");
    if meta.is_file() {
        match read_bounded(&meta, limits.max_config_size) {
            Ok(b) => {
                if let Err(e) = keras_metadata(&b, r) {
                    r.errors.push(format!("keras_metadata.pb: {e}"));
                }
            }
            Err(e) => r.errors.push(format!("keras_metadata.pb: {e}")),
        }
    }
    let sm = dir.join("saved_model.pb");
    if sm.is_file() {
        match read_bounded(&sm, limits.max_config_size) {
            Ok(b) => {
                if let Err(e) = saved_model(&b, r) {
                    r.errors.push(format!("saved_model.pb: {e}"));
                }
            }
            Err(e) => r.errors.push(format!("saved_model.pb: {e}")),
        }
    } else if !meta.is_file() {
        r.errors.push("no saved_model.pb or keras_metadata.pb".into());
    }
}

/// `SavedMetadata { repeated SavedObject nodes = 1 }`, each with
/// `node_path = 3` and its Keras JSON in `metadata = 5`.
pub fn keras_metadata(b: &[u8], r: &mut ScanReport) -> Result<(), ProtoError> {
    for node in bytes_fields(b, 1)? {
        let node_path = string_field(node, 3)?.unwrap_or_default();
        if let Some(json) = bytes_fields(node, 5)?.first() {
            let root = if node_path == "root" { "model".to_string() } else { format!("model/{node_path}") };
            scan_json_bytes(json, &root, r);
        }
    }
    Ok(())
}

/// `SavedModel { meta_graphs = 2 }` → `MetaGraphDef { graph_def = 2,
/// object_graph_def = 7 }` → `GraphDef { node = 1, library = 2 }`.
pub fn saved_model(b: &[u8], r: &mut ScanReport) -> Result<(), ProtoError> {
    let mut ops = OpTally::default();
    for mg in bytes_fields(b, 2)? {
        for graph in bytes_fields(mg, 2)? {
            ops.nodes(&bytes_fields(graph, 1)?, "graph")?;
            for lib in bytes_fields(graph, 2)? {
                for func in bytes_fields(lib, 1)? {
                    let name = match bytes_fields(func, 1)?.first() {
                        Some(sig) => string_field(sig, 1)?.unwrap_or_default(),
                        None => String::new(),
                    };
                    ops.nodes(&bytes_fields(func, 3)?, &format!("function/{name}"))?;
                }
            }
        }
        // SavedObjectGraph nodes → user_object (4) → metadata (3): older
        // TF versions keep the Keras config here instead of keras_metadata.pb.
        for og in bytes_fields(mg, 7)? {
            for node in bytes_fields(og, 1)? {
                for uo in bytes_fields(node, 4)? {
                    if let Some(json) = bytes_fields(uo, 3)?.first().filter(|j| !j.is_empty()) {
                        scan_json_bytes(json, "model", r);
                    }
                }
            }
        }
    }
    ops.report(r);
    Ok(())
}

#[derive(Default)]
struct OpTally {
    /// op → (severity, count, first location, why)
    hits: HashMap<String, (Severity, usize, String, &'static str)>,
}

impl OpTally {
    fn nodes(&mut self, nodes: &[&[u8]], scope: &str) -> Result<(), ProtoError> {
        let mut op_of: HashMap<String, String> = HashMap::new();
        let mut parsed = Vec::with_capacity(nodes.len());
        for n in nodes {
            let name = string_field(n, 1)?.unwrap_or_default();
            let op = string_field(n, 2)?.unwrap_or_default();
            let first_input = string_field(n, 3)?;
            op_of.insert(name.clone(), op.clone());
            parsed.push((name, op, first_input));
        }
        for (name, op, input) in parsed {
            let loc = format!("{scope}/{name}");
            if PYTHON_OPS.contains(&op.as_str()) {
                self.hit(op, Severity::High, loc, "calls back into the Python interpreter that runs the graph");
            } else if let Some((_, sev)) = FILE_OPS.iter().find(|(o, _)| *o == op) {
                self.hit(op, *sev, loc, "reads or writes files chosen by the graph");
            } else if CHECKPOINT_OPS.contains(&op.as_str()) {
                let src =
                    input.as_deref().map(|i| i.trim_start_matches('^').split(':').next().unwrap_or(i)).unwrap_or("");
                if op_of.get(src).is_some_and(|o| o == "Const") {
                    self.hit(op, Severity::Medium, loc, "saves or restores a checkpoint at a path fixed in the graph");
                }
            }
        }
        Ok(())
    }

    fn hit(&mut self, op: String, sev: Severity, loc: String, why: &'static str) {
        self.hits.entry(op).or_insert((sev, 0, loc, why)).1 += 1;
    }

    fn report(self, r: &mut ScanReport) {
        let mut hits: Vec<_> = self.hits.into_iter().collect();
        hits.sort();
        for (op, (severity, count, location, why)) in hits {
            let kind = if PYTHON_OPS.contains(&op.as_str()) { "savedmodel-python-op" } else { "savedmodel-file-op" };
            r.findings.push(Finding {
                severity,
                location,
                kind: kind.into(),
                message: format!("graph op `{op}` ({count}x) {why}"),
            });
        }
    }
}
