//! `sandload scan` end to end: the real binary on models written by the real
//! Keras 2.12 (tests/fixtures/scan_fixtures.py). Each test asserts the exact
//! worst severity and exit code, so a scanner that silently reads nothing
//! (exit 0, no findings) fails every malicious case.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generates the corpus once per test process; `None` means skip.
fn fixtures() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = root.join(".venv/bin/python");
        if !python.exists() {
            let msg = format!("{} missing: run scripts/setup-python.sh", python.display());
            if std::env::var("SANDLOAD_REQUIRE_SANDBOX").as_deref() == Ok("1") {
                panic!("{msg}");
            }
            eprintln!("SKIP scan integration tests: {msg}");
            return None;
        }
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scan-fixtures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let status = Command::new(&python)
            .arg(root.join("tests/fixtures/scan_fixtures.py"))
            .arg(&out)
            .env("TF_CPP_MIN_LOG_LEVEL", "2")
            .status()
            .expect("run fixture generator");
        assert!(status.success(), "scan_fixtures.py failed: {status}");
        Some(out)
    })
    .as_deref()
}

struct Scan {
    code: i32,
    json: Value,
}

fn scan(args: &[&str], paths: &[PathBuf]) -> Scan {
    let out = Command::new(env!("CARGO_BIN_EXE_sandload"))
        .arg("scan")
        .args(["--format", "json"])
        .args(args)
        .args(paths)
        .output()
        .expect("run sandload scan");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    Scan { code: out.status.code().expect("exit code"), json }
}

fn worst(s: &Scan) -> Option<String> {
    s.json["summary"]["highest"].as_str().map(str::to_string)
}

fn kinds(s: &Scan) -> Vec<String> {
    s.json["reports"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().iter())
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Scans one fixture and asserts its worst severity and exit code.
fn expect(name: &str, severity: Option<&str>, code: i32) -> Option<Scan> {
    let dir = fixtures()?;
    let s = scan(&[], &[dir.join(name)]);
    assert_eq!(worst(&s).as_deref(), severity, "{name}: {:#}", s.json);
    assert_eq!(s.code, code, "{name}: {:#}", s.json);
    Some(s)
}

#[test]
fn benign_models_have_zero_findings_and_exit_0() {
    for name in ["benign_dense.h5", "benign_savedmodel", "benign_v3.keras"] {
        if let Some(s) = expect(name, None, 0) {
            assert_eq!(s.json["summary"]["errors"], 0, "{name}");
        }
    }
}

#[test]
fn arithmetic_lambda_is_low_and_passes_default_fail_on() {
    if let Some(s) = expect("lambda_arith.h5", Some("low"), 0) {
        assert!(s.json.to_string().contains("looks arithmetic"));
    }
}

#[test]
fn fail_on_low_fails_the_arithmetic_lambda() {
    let Some(dir) = fixtures() else { return };
    assert_eq!(scan(&["--fail-on", "low"], &[dir.join("lambda_arith.h5")]).code, 1);
}

#[test]
fn os_system_lambda_is_critical_and_names_os_system() {
    if let Some(s) = expect("lambda_os_system.h5", Some("critical"), 1) {
        let f = &s.json["reports"][0]["findings"][0];
        assert_eq!(f["kind"], "lambda-layer");
        assert!(f["message"].as_str().unwrap().contains("os.system"), "{f}");
        assert!(f["location"].as_str().unwrap().ends_with("/evil"), "{f}");
    }
}

#[test]
fn lambda_nested_in_sequential_inside_functional_is_critical() {
    if let Some(s) = expect("nested_lambda.h5", Some("critical"), 1) {
        assert_eq!(s.json["reports"][0]["findings"][0]["location"], "model/outer/inner_seq/hidden");
    }
}

#[test]
fn lambda_inside_timedistributed_is_critical() {
    if let Some(s) = expect("timedistributed_lambda.h5", Some("critical"), 1) {
        assert!(s.json["reports"][0]["findings"][0]["location"]
            .as_str()
            .unwrap()
            .ends_with("time_distributed/td_evil"));
    }
}

#[test]
fn savedmodel_dir_lambda_is_critical() {
    expect("savedmodel_lambda", Some("critical"), 1);
}

#[test]
fn keras_v3_zip_lambda_is_critical() {
    expect("lambda_v3.keras", Some("critical"), 1);
}

#[test]
fn config_module_reference_gadget_is_critical() {
    if let Some(s) = expect("config_module_gadget.json", Some("critical"), 1) {
        assert_eq!(kinds(&s), ["module-reference"]);
    }
}

#[test]
fn keras3_gadgets_are_each_reported() {
    if let Some(s) = expect("keras3_gadgets.json", Some("critical"), 1) {
        let k = kinds(&s);
        for want in ["deserialization-gadget", "tfsm-layer", "external-vocabulary", "lambda-layer"] {
            assert!(k.iter().any(|x| x == want), "{want} missing from {k:?}");
        }
    }
}

#[test]
fn custom_object_needs_custom_code_medium() {
    if let Some(s) = expect("custom_object.h5", Some("medium"), 1) {
        assert_eq!(kinds(&s), ["custom-object"]);
    }
}

#[test]
fn hdf5_storage_tricks_are_flagged() {
    for (name, kind, sev) in [
        ("hdf5_external_link.h5", "hdf5-external-link", "high"),
        ("hdf5_soft_link.h5", "hdf5-soft-link", "medium"),
        ("hdf5_external_dataset.h5", "hdf5-external-dataset", "high"),
        ("hdf5_virtual_dataset.h5", "hdf5-virtual-dataset", "high"),
        ("hdf5_huge_shape.h5", "hdf5-oversized-dataset", "high"),
    ] {
        if let Some(s) = expect(name, Some(sev), 1) {
            assert_eq!(kinds(&s), [kind], "{name}");
        }
    }
}

#[test]
fn truncated_file_is_an_error_never_clean() {
    if let Some(s) = expect("truncated.h5", None, 2) {
        assert!(s.json["summary"]["errors"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn zip_path_traversal_is_critical() {
    if let Some(s) = expect("traversal.keras", Some("critical"), 1) {
        assert_eq!(kinds(&s), ["zip-path-traversal"]);
    }
}

#[test]
fn zip_bomb_is_high_and_its_config_counts_as_unread() {
    if let Some(s) = expect("zip_bomb.keras", Some("high"), 1) {
        assert_eq!(kinds(&s), ["zip-bomb"]);
        assert!(s.json["summary"]["errors"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn non_model_file_is_nothing_scannable_exit_3() {
    expect("not_a_model.txt", None, 3);
}

#[test]
fn missing_path_is_an_error_exit_2() {
    let s = scan(&[], &[PathBuf::from("/nonexistent/sandload-model.h5")]);
    assert_eq!(s.code, 2);
}

#[test]
fn whole_corpus_matches_the_generator_manifest() {
    let Some(dir) = fixtures() else { return };
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    for (name, want) in manifest.as_object().unwrap() {
        let s = scan(&[], &[dir.join(name)]);
        assert_eq!(worst(&s).as_deref(), want["severity"].as_str(), "{name}");
        assert_eq!(i64::from(s.code), want["exit"].as_i64().unwrap(), "{name}");
    }
    // The directory as a whole: findings win over errors (exit 1).
    let all = scan(&[], &[dir.to_path_buf()]);
    assert_eq!(all.code, 1);
    assert_eq!(all.json["summary"]["highest"], "critical");
}

#[test]
fn sarif_output_is_sarif_2_1_0_with_rules_and_results() {
    let Some(dir) = fixtures() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_sandload"))
        .args(["scan", "--format", "sarif"])
        .arg(dir.join("lambda_os_system.h5"))
        .arg(dir.join("truncated.h5"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["rules"][0]["id"], "lambda-layer");
    assert_eq!(run["results"][0]["ruleId"], "lambda-layer");
    assert_eq!(run["results"][0]["level"], "error");
    assert!(run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap()
        .starts_with("file://"));
    assert_eq!(run["invocations"][0]["executionSuccessful"], false, "the truncated file must surface");
}

#[test]
fn human_output_has_no_colour_when_piped() {
    let Some(dir) = fixtures() else { return };
    let out =
        Command::new(env!("CARGO_BIN_EXE_sandload")).arg("scan").arg(dir.join("lambda_os_system.h5")).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("CRITICAL") && text.contains("os.system"), "{text}");
    assert!(!text.contains('\x1b'), "escape codes on a pipe");
    assert!(out.stderr.is_empty(), "no progress on a non-TTY stderr");
}

#[test]
fn scanning_a_small_model_is_fast() {
    let Some(dir) = fixtures() else { return };
    let path = dir.join("nested_lambda.h5");
    scan(&[], std::slice::from_ref(&path));
    let start = Instant::now();
    for _ in 0..5 {
        scan(&[], std::slice::from_ref(&path));
    }
    // Includes process start; the scan itself is well under 50 ms.
    assert!(start.elapsed() < Duration::from_millis(5 * 250), "{:?}", start.elapsed());
}
