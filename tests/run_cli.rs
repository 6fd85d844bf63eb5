//! `sandload run` end to end: real binary, real TensorFlow 2.12 models, real kernel sandbox.

mod common;

use common::*;

fn reference(name: &str) -> Vec<f32> {
    read_npz_f32(&fixtures().model("reference.npz"), name)
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-6, "got {got:?}, want {want:?}");
    }
}

#[test]
fn dense_h5_outputs_equal_unsandboxed_keras() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let out = f.dir.join(format!("{}.npy", random_token("out")));
    let r = sandload_run(&[
        f.model("dense.h5").to_str().unwrap(),
        "-i",
        f.model("x.npy").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (shape, got) = read_npy_f32(&out);
    assert_eq!(shape, vec![2, 2]);
    assert_close(&got, &reference("dense"));
    assert_eq!(r.report["verdict"], "ok");
}

#[test]
fn lambda_model_gives_the_same_outputs_in_every_format() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    for model in ["lambda_benign.h5", "lambda_benign.keras", "lambda_benign_savedmodel"] {
        let out = f.dir.join(format!("{}.npz", random_token("out")));
        let mut args = vec![
            f.model(model).to_str().unwrap().to_string(),
            "-i".into(),
            format!("x={}", f.model("x.npy").display()),
            "-o".into(),
            out.display().to_string(),
        ];
        if model.ends_with(".keras") {
            // Keras' zip format refuses Lambdas under safe_mode (its only defence).
            args.extend(["--safe-mode".into(), "off".into()]);
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sandload_run(&a);
        assert_eq!(r.code, 0, "{model}: {}", r.stderr);
        assert_close(&read_npz_f32(&out, "double_plus_one"), &reference("lambda_benign"));
    }
}

#[test]
fn keras_zip_lambda_is_refused_by_safe_mode_and_relayed_as_exit_3() {
    if !sandbox_available() {
        return;
    }
    let r = sandload_run(&[fixtures().model("lambda_benign.keras").to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("safe_mode") || r.stderr.to_lowercase().contains("unsafe"), "{}", r.stderr);
}

#[test]
fn signature_is_printed_without_inputs() {
    if !sandbox_available() {
        return;
    }
    let r = sandload_run(&[fixtures().model("dense.h5").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("input   x float32 [?, 4]"), "{}", r.stdout);
    assert!(r.stdout.contains("output  dense float32 [?, 2]"), "{}", r.stdout);
}

#[test]
fn json_input_and_json_result() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let inp = f.dir.join(format!("{}.json", random_token("in")));
    std::fs::write(&inp, r#"{"x": [[1, 2, 3, 4], [-1, 0.5, 0, 2]]}"#).unwrap();
    let r = sandload_run(&[f.model("lambda_benign.h5").to_str().unwrap(), "-i", inp.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let data: Vec<f32> =
        v["outputs"][0]["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    assert_close(&data, &reference("lambda_benign"));
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([2, 4]));
}

#[test]
fn bad_inputs_exit_2_with_one_clear_line() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let d = f.dir.parent().unwrap().join(random_token("bad"));
    std::fs::create_dir_all(&d).unwrap();
    let fifo = d.join("model.h5");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let notsaved = d.join("dir");
    std::fs::create_dir_all(&notsaved).unwrap();
    let x = std::fs::read(f.model("x.npy")).unwrap();
    let truncated = d.join("trunc.npy");
    std::fs::write(&truncated, &x[..x.len() - 3]).unwrap();
    let object = d.join("obj.npy");
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let mut dict = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".to_string();
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    h.extend((dict.len() as u16).to_le_bytes());
    h.extend(dict.as_bytes());
    h.extend(b"\x80\x04\x95cos\nsystem\n");
    std::fs::write(&object, h).unwrap();
    let dense = f.model("dense.h5");
    let xs = f.model("x.npy");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![d.join("missing.h5").display().to_string()], "No such file"),
        (vec![fifo.display().to_string()], "FIFO"),
        (vec!["/dev/zero".into()], "device"),
        (vec![notsaved.display().to_string()], "not a SavedModel"),
        (vec![dense.display().to_string(), "-i".into(), truncated.display().to_string()], "truncated"),
        (vec![dense.display().to_string(), "-i".into(), object.display().to_string()], "unpickling"),
        (vec![dense.display().to_string(), "-i".into(), format!("nope={}", xs.display())], "no input named"),
        (vec![f.model("x.npy").display().to_string()], "unsupported format"),
        (
            vec![
                dense.display().to_string(),
                "-i".into(),
                xs.display().to_string(),
                "-o".into(),
                "/tmp/out.txt".into(),
            ],
            "use .npy",
        ),
    ];
    for (args, needle) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sandload_run(&a);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: expected {needle:?} in {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}

#[test]
fn a_shape_the_model_rejects_is_exit_3_with_keras_message() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let inp = f.dir.join(format!("{}.json", random_token("in")));
    std::fs::write(&inp, "[[1, 2, 3]]").unwrap();
    let r = sandload_run(&[f.model("dense.h5").to_str().unwrap(), "-i", inp.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("ValueError"), "{}", r.stderr);
}

#[test]
fn secrets_on_the_host_are_not_in_scope() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let r =
        sandload_run(&[f.model("hostile_exfil.h5").to_str().unwrap(), "-i", f.model("x.npy").to_str().unwrap(), "-v"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The payload ran (it prints EXFIL) and found none of the canaries.
    assert!(r.all_text().contains("EXFIL"), "payload did not run: {}", r.all_text());
    for canary in [&f.env_canary, &f.home_canary, &f.beside_canary] {
        assert!(!r.all_text().contains(canary.as_str()), "canary {canary} leaked");
    }
    // The same payload, loaded by plain Keras on the host, finds them all: the test can fail.
    let out = std::process::Command::new(venv_python())
        .args(["-c", "import sys,numpy as np,tensorflow as tf; m=tf.keras.models.load_model(sys.argv[1], compile=False); m.predict(np.ones((1,4),'float32'), verbose=0)"])
        .arg(f.model("hostile_exfil.h5"))
        .env("SANDLOAD_CANARY_ENV", &f.env_canary)
        .env("HOME", &f.home)
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for canary in [&f.env_canary, &f.home_canary, &f.beside_canary] {
        assert!(text.contains(canary.as_str()), "control run should have found {canary}");
    }
}

#[test]
fn writes_outside_tmp_fail_and_the_host_is_unchanged() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let model = f.model("hostile_write.h5");
    let before = std::fs::read(&model).unwrap();
    let r = sandload_run(&[model.to_str().unwrap(), "-i", f.model("x.npy").to_str().unwrap(), "-v"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.all_text().contains("WRITE-BLOCKED"), "{}", r.all_text());
    assert!(!r.all_text().contains("WRITE-OK"), "{}", r.all_text());
    assert_eq!(std::fs::read_to_string(&f.host_file).unwrap(), "untouched\n");
    assert_eq!(std::fs::read(&model).unwrap(), before);
    assert!(!std::path::Path::new("/etc/sandload-pwned").exists());
}

#[test]
fn timeout_kills_and_reaps_the_whole_tree() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let r = sandload_run(&[
        f.model("hostile_spin.h5").to_str().unwrap(),
        "-i",
        f.model("x.npy").to_str().unwrap(),
        "--timeout",
        "8",
    ]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.elapsed.as_secs() < 8 + 10, "took {:?}", r.elapsed);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let left = host_processes_with("hostile_spin");
    assert!(left.is_empty(), "processes outlived sandload: {left:?}");
}

#[test]
fn supervisor_memory_stays_small_while_a_gib_tensor_streams_through() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let d = f.dir.parent().unwrap().join(random_token("big"));
    std::fs::create_dir_all(&d).unwrap();
    let inp = d.join("big.npy");
    // 1 GiB of float32: shape (256, 1048576), written header + zeros without holding it.
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&inp).unwrap());
        let mut dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (256, 1048576), }".to_string();
        while (10 + dict.len() + 1) % 64 != 0 {
            dict.push(' ');
        }
        dict.push('\n');
        w.write_all(b"\x93NUMPY\x01\x00").unwrap();
        w.write_all(&(dict.len() as u16).to_le_bytes()).unwrap();
        w.write_all(dict.as_bytes()).unwrap();
        let chunk: Vec<u8> = (0..(1u32 << 20)).flat_map(|i| ((i % 1000) as f32).to_le_bytes()).collect();
        for _ in 0..256 {
            w.write_all(&chunk).unwrap();
        }
    }
    let out = d.join("out.npy");
    let r = sandload_run(&[
        f.model("identity.h5").to_str().unwrap(),
        "-i",
        inp.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--memory",
        "12G",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), std::fs::metadata(&inp).unwrap().len());
    let peak = r.report["sandbox"]["supervisor_peak_rss"].as_u64().unwrap();
    eprintln!("supervisor VmHWM with a 1 GiB tensor each way: {} MiB", peak >> 20);
    assert!(peak < 64 << 20, "supervisor peak RSS {} MiB", peak >> 20);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn the_loader_also_runs_keras_3_where_safe_mode_refuses_lambdas() {
    if !sandbox_available() {
        return;
    }
    let py = repo().join(".venv-keras3/bin/python");
    if !py.exists() {
        assert!(std::env::var("SANDLOAD_REQUIRE_SANDBOX").as_deref() != Ok("1"), "run scripts/setup-keras3.sh");
        eprintln!("SKIP: no .venv-keras3");
        return;
    }
    let f = fixtures();
    let py = py.to_str().unwrap();
    let x = f.model("x.npy");
    let r = sandload_run(&[f.model("dense.h5").to_str().unwrap(), "-i", x.to_str().unwrap(), "--python", py, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.report["runtime"]["keras"].as_str().unwrap().starts_with("3."), "{}", r.report["runtime"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let got: Vec<f32> =
        v["outputs"][0]["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    assert_close(&got, &reference("dense"));
    let lambda = f.model("lambda_benign.h5");
    let r = sandload_run(&[lambda.to_str().unwrap(), "-i", x.to_str().unwrap(), "--python", py]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("safe_mode"), "{}", r.stderr);
    let r = sandload_run(&[
        lambda.to_str().unwrap(),
        "-i",
        x.to_str().unwrap(),
        "--python",
        py,
        "--safe-mode",
        "off",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let got: Vec<f32> =
        v["outputs"][0]["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    assert_close(&got, &reference("lambda_benign"));
}

#[test]
fn a_symlinked_venv_is_shown_at_its_real_place() {
    if !sandbox_available() {
        return;
    }
    let dir = std::env::temp_dir().join(random_token("link"));
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(repo().join(".venv"), dir.join(".venv")).unwrap();
    let py = dir.join(".venv/bin/python");
    let r = sandload_run(&[fixtures().model("dense.h5").to_str().unwrap(), "--python", py.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn a_runtime_that_lives_under_tmp_is_not_hidden_by_the_private_tmp() {
    if !sandbox_available() {
        return;
    }
    // A checkout under /tmp (CI clones may live there) puts the venv below the host's /tmp,
    // where the sandbox mounts its private /tmp. Hard links make the copy cheap.
    let dir = std::env::temp_dir().join(random_token("venv"));
    let ok = std::process::Command::new("cp").arg("-al").arg(repo().join(".venv")).arg(&dir).status().unwrap();
    assert!(ok.success());
    let f = fixtures();
    let py = dir.join("bin/python");
    let r = sandload_run(&[f.model("dense.h5").to_str().unwrap(), "--python", py.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(r.code, 0, "{}", r.stderr);
}
