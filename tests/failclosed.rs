//! Fail closed: when a confinement layer cannot be applied, sandload refuses with exit 7 and
//! names the layer and the fix; it never runs the model unconfined. Also the limits that end
//! a run with exit 6, and `sandload doctor`.

mod common;

use std::process::Command;

use common::*;

/// A copy of policies/ with `edit` applied to default.toml.
fn policy_with(edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let f = fixtures();
    let dir = f.dir.parent().unwrap().join(random_token("policy"));
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(repo().join("policies")).unwrap().flatten() {
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let p = dir.join("default.toml");
    std::fs::write(&p, edit(std::fs::read_to_string(&p).unwrap())).unwrap();
    p
}

#[test]
fn landlock_below_the_required_abi_refuses_with_exit_7() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let pol = policy_with(|s| s.replace("min_abi = 6", "min_abi = 99"));
    let r = sandload_run(&[f.model("hostile_exfil.h5").to_str().unwrap(), "--policy", pol.to_str().unwrap()]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("landlock") && r.stderr.contains("--landlock-min-abi"), "{}", r.stderr);
    assert!(!r.child_out().contains("EXFIL"), "the model must not have run");
    // The explicit opt-in accepts the lower level, and the report names it.
    let r = sandload_run(&[
        f.model("dense.h5").to_str().unwrap(),
        "--policy",
        pol.to_str().unwrap(),
        "--landlock-min-abi",
        "6",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.report["sandbox"]["loosened"].to_string().contains("Landlock ABI 6 accepted"), "{}", r.report);
}

#[test]
fn blocked_namespaces_refuse_with_exit_7_and_the_fix() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let out = Command::new(venv_python())
        .arg(repo().join("tests/fixtures/deny_unshare.py"))
        .arg(BIN)
        .args(["run", f.model("hostile_exfil.h5").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("namespaces.unshare") && err.contains("seccomp profile blocks unshare"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("EXFIL"));
    // doctor names the same missing piece.
    let out = Command::new(venv_python())
        .arg(repo().join("tests/fixtures/deny_unshare.py"))
        .arg(BIN)
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MISSING") && text.contains("user namespace"), "{text}");
}

#[test]
fn serve_refuses_with_exit_7_when_no_sandbox_can_be_built() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let out = Command::new(venv_python())
        .arg(repo().join("tests/fixtures/deny_unshare.py"))
        .arg(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "-m"])
        .arg(format!("dense={}", f.model("dense.h5").display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("sandbox_setup_failed") && err.contains("namespaces.unshare"), "{err}");
}

#[test]
fn doctor_reports_every_layer_available_here() {
    if !sandbox_available() {
        return;
    }
    let out = sandload(&["doctor", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    for layer in
        ["user namespace", "pid namespace", "landlock", "seccomp + no_new_privs", "/proc in a new pid namespace"]
    {
        assert!(v["checks"].as_array().unwrap().iter().any(|c| c["layer"] == layer && c["ok"] == true), "{layer}: {v}");
    }
}

#[test]
fn cpu_time_limit_ends_a_spinning_model_with_exit_6() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let pol = policy_with(|s| s.replace("cpu_seconds = 0 ", "cpu_seconds = 6 "));
    let r = sandload_run(&[
        f.model("hostile_spin.h5").to_str().unwrap(),
        "-i",
        f.model("x.npy").to_str().unwrap(),
        "--policy",
        pol.to_str().unwrap(),
        "--timeout",
        "120",
    ]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("CPU"), "{}", r.stderr);
}

#[test]
fn unknown_policy_keys_and_syscalls_are_usage_errors() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let pol = policy_with(|s| s.replace("[limits]", "[limits]\nmemroy = \"1G\""));
    let r = sandload_run(&[f.model("dense.h5").to_str().unwrap(), "--policy", pol.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let pol = policy_with(|s| s);
    let p1 = pol.parent().unwrap().join("seccomp-phase1.toml");
    let t = std::fs::read_to_string(&p1).unwrap().replacen("syscall = \"read\"", "syscall = \"raed\"", 1);
    std::fs::write(&p1, t).unwrap();
    let r = sandload_run(&[f.model("dense.h5").to_str().unwrap(), "--policy", pol.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unknown syscall \"raed\""), "{}", r.stderr);
}
