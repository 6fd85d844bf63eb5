//! Config walker tests: nesting, wrappers, gadgets, custom objects, depth.

use super::*;
use crate::scan::{Finding, Severity};

fn scan(v: serde_json::Value) -> Vec<Finding> {
    let mut out = Vec::new();
    Walker { out: &mut out }.scan(&v, "model");
    out
}

/// `lambda x: os.system(...)` marshalled by CPython 3.11, as Keras stores it.
const OS_SYSTEM_B64: &str = "4wEAAAAAAAAAAAAAAAMAAAADAAAA8zoAAACXAHQBAAAAAAAAAAAAAGoBAAAAAAAAAABkAaYBAACr\nAQAAAAAAAAAAfABmAmQCGQAAAAAAAAAAAFMAKQNO+h90b3VjaCAvdG1wL3NhbmRsb2FkLXNjYW4t\nY2FuYXJ56QEAAAApAtoCb3PaBnN5c3RlbakB2gF4cwEAAAAg+iovd29yay9tYWluL3Rlc3RzL2Zp\neHR1cmVzL3NjYW5fZml4dHVyZXMucHn6CDxsYW1iZGE+cgkAAAA3AAAAcxsAAACAAJVylHnQIULR\nF0PUF0PAUdAWR8gB1BZKgADzAAAAAA==\n";

fn lambda(name: &str) -> serde_json::Value {
    serde_json::json!({"class_name": "Lambda", "config": {"name": name, "function": [OS_SYSTEM_B64, null, null], "function_type": "lambda", "module": "__main__"}})
}

#[test]
fn lambda_in_wrapper_in_nested_model_is_found_with_its_path() {
    let v = serde_json::json!({"class_name": "Functional", "config": {"name": "outer", "layers": [
        {"class_name": "Sequential", "config": {"name": "inner", "layers": [
            {"class_name": "Bidirectional", "config": {"name": "bi", "layer": {"class_name": "TimeDistributed", "config": {"name": "td", "layer": lambda("deep")}}}}
        ]}}
    ]}});
    let f = scan(v);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].location, "model/outer/inner/bi/td/deep");
    assert!(f[0].message.contains("os.system"));
}

#[test]
fn output_shape_and_mask_functions_are_judged_too() {
    let v = serde_json::json!({"class_name": "Lambda", "config": {"name": "l", "function": "relu", "function_type": "function", "module": "keras.activations",
        "output_shape": [OS_SYSTEM_B64, null, null], "output_shape_type": "lambda", "mask": "system", "mask_type": "function", "mask_module": "posix"}});
    let f = scan(v);
    assert!(f.iter().any(|x| x.severity == Severity::Critical && x.message.contains("output_shape")), "{f:?}");
    assert!(f.iter().any(|x| x.severity == Severity::Critical && x.message.contains("posix.system")), "{f:?}");
}

#[test]
fn stock_layers_and_keras_modules_are_clean() {
    let v = serde_json::json!({"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}}}},
        {"class_name": "Custom>Adam", "config": {"name": "Adam"}}]}});
    assert!(scan(v).is_empty());
}

#[test]
fn gadgets_and_custom_objects() {
    let v = serde_json::json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": null},
        {"class_name": "MyLayer", "config": {"name": "mine"}},
        {"class_name": "IntegerLookup", "config": {"name": "il", "vocabulary": "/etc/passwd"}},
        {"module": "numpy", "class_name": "function", "config": "load"}]}});
    let found = scan(v);
    let kinds: Vec<(&str, Severity)> = found.iter().map(|f| (f.kind.as_str(), f.severity)).collect();
    assert!(kinds.contains(&("deserialization-gadget", Severity::High)), "{kinds:?}");
    assert!(kinds.contains(&("custom-object", Severity::Medium)), "{kinds:?}");
    assert!(kinds.contains(&("external-vocabulary", Severity::High)), "{kinds:?}");
    assert!(kinds.contains(&("module-reference", Severity::High)), "{kinds:?}");
}

#[test]
fn json_deeper_than_serde_limit_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let mut out = Vec::new();
    assert!(scan_json_text(&deep, "model", &mut out).is_err());
}
