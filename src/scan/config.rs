//! Walks a Keras model config (JSON from an `.h5` attribute, a `.keras`
//! zip, a SavedModel's metadata or a plain file) and reports everything that
//! makes loading it run or fetch code. Nested models and wrappers are
//! walked to any depth: modelscan looks only at top-level layers.

use serde_json::{Map, Value};

use super::known_classes::is_known;
use super::pycode;
use super::{Finding, Severity};

/// serde_json already refuses nesting beyond 128; this walker stops at the
/// same depth so a hand-built `Value` cannot overflow the stack either.
const MAX_DEPTH: usize = 160;
/// Largest decoded Lambda bytecode considered.
const MAX_CODE: usize = 1 << 20;

/// Modules whose callables a config may legitimately name.
const KERAS_MODULES: &[&str] =
    &["keras", "tf_keras", "tensorflow", "keras_nlp", "keras_cv", "keras_hub", "tensorflow_hub"];
/// Modules that give shell, code loading or network (CVE-2025-1550 payloads).
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "builtins",
    "__builtin__",
    "sys",
    "importlib",
    "socket",
    "pickle",
    "marshal",
    "ctypes",
    "shutil",
    "runpy",
    "pty",
    "code",
    "codecs",
    "webbrowser",
    "urllib",
    "requests",
    "http",
    "io",
    "pathlib",
];
/// Keras functions that, named in a config, undo safe mode or reach files
/// and URLs: CVE-2025-9906 (enable_unsafe_deserialization), CVE-2025-8747
/// (get_file), load_model/load_weights chaining into another model.
const GADGETS: &[(&str, Severity)] = &[
    ("enable_unsafe_deserialization", Severity::Critical),
    ("get_file", Severity::High),
    ("load_model", Severity::High),
    ("load_weights", Severity::High),
    ("set_value", Severity::Medium),
];
/// Keys that only group layers; they add nothing to a location.
const STRUCTURAL_KEYS: &[&str] =
    &["config", "layers", "layer", "items", "forward_layer", "backward_layer", "cell", "cells", "module"];

pub struct Walker<'a> {
    pub out: &'a mut Vec<Finding>,
}

impl Walker<'_> {
    /// Scans one config value; `root` names where it came from ("model").
    pub fn scan(&mut self, v: &Value, root: &str) {
        self.walk(v, root, 0);
    }

    fn push(&mut self, severity: Severity, location: &str, kind: &str, message: String) {
        let f = Finding { severity, location: location.to_string(), kind: kind.to_string(), message };
        if !self.out.iter().any(|g| g.kind == f.kind && g.message == f.message && g.severity == f.severity) {
            self.out.push(f);
        }
    }

    fn walk(&mut self, v: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.push(
                Severity::High,
                path,
                "config-too-deep",
                format!("config nesting exceeds {MAX_DEPTH} levels; not scanned further"),
            );
            return;
        }
        match v {
            Value::Array(items) => items.iter().for_each(|i| self.walk(i, path, depth + 1)),
            Value::Object(o) => {
                let here = match object_name(o) {
                    Some(n) if o.contains_key("class_name") => format!("{path}/{n}"),
                    _ => path.to_string(),
                };
                if let Some(cls) = o.get("class_name").and_then(Value::as_str) {
                    self.object(o, cls, &here);
                }
                for (k, child) in o {
                    let child_path = if STRUCTURAL_KEYS.contains(&k.as_str())
                        || matches!(child, Value::Object(c) if object_name(c).is_some())
                    {
                        here.clone()
                    } else {
                        format!("{here}/{k}")
                    };
                    self.walk(child, &child_path, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// One serialized Keras object (`{"class_name": …, "config": …}`).
    fn object(&mut self, o: &Map<String, Value>, cls: &str, path: &str) {
        let cfg = o.get("config");
        let cfg_obj = cfg.and_then(Value::as_object);
        let name = object_name(o).unwrap_or(cls);
        for field in ["class_name", "registered_name"]
            .iter()
            .filter_map(|k| o.get(*k).and_then(Value::as_str))
            .chain(cfg.and_then(Value::as_str))
        {
            if let Some((g, sev)) = GADGETS.iter().find(|(g, _)| field == *g || field.ends_with(&format!(">{g}"))) {
                self.push(
                    *sev,
                    path,
                    "deserialization-gadget",
                    format!("config calls `{g}` while loading (CVE-2025-9906 / CVE-2025-8747 class)"),
                );
            }
        }
        if let Some(module) = o.get("module").and_then(Value::as_str) {
            let target =
                cfg.and_then(Value::as_str).or(o.get("registered_name").and_then(Value::as_str)).unwrap_or(cls);
            self.module_ref(module, target, path);
        }
        match cls {
            "Lambda" => {
                if let Some(c) = cfg_obj {
                    self.lambda(c, name, path);
                }
            }
            "__lambda__" => {
                let code = cfg_obj.and_then(|c| c.get("code")).and_then(Value::as_str).unwrap_or("");
                let v = pycode::judge_b64(code, MAX_CODE);
                self.push(v.severity, path, "lambda-layer", format!("Keras 3 `__lambda__` function: {}", v.summary));
            }
            "TFSMLayer" => {
                let fp = cfg_obj.and_then(|c| c.get("filepath")).and_then(Value::as_str).unwrap_or("?");
                self.push(
                    Severity::High,
                    path,
                    "tfsm-layer",
                    format!("TFSMLayer `{name}` loads the SavedModel at {fp:?} and runs its graph (CVE-2026-1462)"),
                );
            }
            "TorchModuleWrapper" => {
                self.push(
                    Severity::Critical,
                    path,
                    "torch-module-wrapper",
                    format!("TorchModuleWrapper `{name}` restores a pickled torch module: unpickling runs code"),
                );
            }
            "StringLookup" | "IntegerLookup" | "TextVectorization" => {
                if let Some(voc) = cfg_obj.and_then(|c| c.get("vocabulary")).and_then(Value::as_str) {
                    self.push(Severity::High, path, "external-vocabulary", format!("{cls} `{name}` reads its vocabulary from {voc:?}, a file path or URL outside the model (CVE-2025-12058)"));
                }
            }
            "function" | "__tuple__" => {}
            // Keras 2.11+ registers its own optimizers as `Custom>Adam`; the
            // part after `>` is what must be a Keras class.
            other if !is_known(other.rsplit('>').next().unwrap_or(other)) => {
                self.push(
                    Severity::Medium,
                    path,
                    "custom-object",
                    format!("class `{other}` is not part of Keras: needs custom code to load"),
                );
            }
            _ => {}
        }
    }

    /// Keras 2 Lambda: `function`, `output_shape` and `mask` may each be
    /// marshalled bytecode ("lambda") or a module-level name ("function").
    fn lambda(&mut self, c: &Map<String, Value>, name: &str, path: &str) {
        for (field, ty_key, mod_key) in [
            ("function", "function_type", "module"),
            ("output_shape", "output_shape_type", "output_shape_module"),
            ("mask", "mask_type", "mask_module"),
        ] {
            let Some(val) = c.get(field) else { continue };
            // Keras 3 `{"class_name": "__lambda__"}` is judged by the walker.
            if val.get("class_name").is_some_and(|c| c == "__lambda__") {
                continue;
            }
            let ty =
                c.get(ty_key).and_then(Value::as_str).unwrap_or(if field == "function" { "lambda" } else { "raw" });
            match ty {
                "lambda" => {
                    let code = lambda_code(val);
                    let v = match code {
                        Some(s) => pycode::judge_b64(s, MAX_CODE),
                        None => pycode::Verdict {
                            severity: Severity::Medium,
                            summary: "runs code stored in a form this scanner does not know".into(),
                        },
                    };
                    self.push(v.severity, path, "lambda-layer", format!("Lambda `{name}` {field}: {}", v.summary));
                }
                "function" => {
                    let f = val.as_str().unwrap_or("?");
                    let m = c.get(mod_key).and_then(Value::as_str).unwrap_or("?");
                    let sev = if DANGEROUS_MODULES.contains(&top_module(m)) {
                        Severity::Critical
                    } else if is_keras_module(m) {
                        Severity::Medium
                    } else {
                        Severity::High
                    };
                    self.push(
                        sev,
                        path,
                        "python-function-reference",
                        format!("Lambda `{name}` {field} imports `{m}.{f}` and calls it (CVE-2025-1550 class)"),
                    );
                }
                _ => {}
            }
        }
    }

    /// `{"module": …}` names where Keras imports a callable from: anything
    /// outside Keras' own packages runs code of the config's choosing
    /// (CVE-2025-1550; tf-keras PR #910).
    fn module_ref(&mut self, module: &str, target: &str, path: &str) {
        if is_keras_module(module) {
            return;
        }
        let sev = if DANGEROUS_MODULES.contains(&top_module(module)) { Severity::Critical } else { Severity::High };
        self.push(sev, path, "module-reference", format!("config imports `{module}` and resolves `{target}` from it, outside the Keras packages (CVE-2025-1550 class)"));
    }
}

fn object_name(o: &Map<String, Value>) -> Option<&str> {
    o.get("config")
        .and_then(Value::as_object)
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .or_else(|| o.get("name").and_then(Value::as_str))
}

fn top_module(m: &str) -> &str {
    m.split('.').next().unwrap_or(m)
}

fn is_keras_module(m: &str) -> bool {
    KERAS_MODULES.contains(&top_module(m))
}

/// The base64 string of a Keras 2 `func_dump` tuple, as a JSON list or as
/// the `{"class_name": "__tuple__", "items": […]}` form SavedModel metadata uses.
fn lambda_code(v: &Value) -> Option<&str> {
    match v {
        Value::Array(a) => a.first().and_then(Value::as_str),
        Value::Object(o) => o.get("items").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str),
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Scans a JSON document; parse failures are returned for the report.
pub fn scan_json_text(text: &str, root: &str, out: &mut Vec<Finding>) -> Result<(), serde_json::Error> {
    let v: Value = serde_json::from_str(text)?;
    Walker { out }.scan(&v, root);
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
