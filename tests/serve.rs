//! `sandload serve` end to end: a real server, real sandboxed workers, plain HTTP and a real
//! Triton client; hostile models crash-looping beside benign ones; systemd notifications.

mod common;

use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Server {
    child: Child,
    addr: String,
    notify: UnixDatagram,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    fn start(models: &[(&str, &str)], extra: &[&str]) -> Server {
        let f = fixtures();
        // sun_path is 108 bytes: keep the socket path short.
        let sock = std::env::temp_dir().join(format!("sl-{}.sock", &random_token("n")[12..28]));
        let notify = UnixDatagram::bind(&sock).unwrap();
        notify.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").args(["--listen", "127.0.0.1:0"]);
        for (n, m) in models {
            cmd.arg("-m").arg(format!("{n}={}", f.model(m).display()));
        }
        let mut child = cmd
            .args(extra)
            .env("NOTIFY_SOCKET", &sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.split("event=listening addr=").nth(1) {
                    tx.send(a.split_whitespace().next().unwrap_or("").to_string()).ok();
                }
                l2.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("server did not say where it listens");
        Server { child, addr, notify, log }
    }

    fn wait_notify(&self, what: &str) {
        let mut buf = [0u8; 512];
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            let n = self.notify.recv(&mut buf).expect("no sd_notify message");
            if String::from_utf8_lossy(&buf[..n]).contains(what) {
                return;
            }
        }
        panic!("no {what} notification");
    }

    fn stop(mut self) -> i32 {
        let code = self.terminate();
        std::mem::forget(self);
        code
    }

    fn terminate(&mut self) -> i32 {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    // A failed assertion must not leave a server running: SIGKILL it (its sandboxes follow
    // through their parent-death signals).
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            Command::new("kill").args(["-KILL", &self.child.id().to_string()]).status().ok();
            self.child.wait().ok();
        }
    }
}

/// A minimal HTTP/1.1 client: (status, headers lower-cased, body).
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    if s.write_all(body).is_err() {
        // The server may refuse an oversized body before reading it all.
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").expect("no header end");
    let head = String::from_utf8_lossy(&out[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, out[split + 4..].to_vec())
}

fn get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let (c, _, b) = http(addr, "GET", path, &[], b"");
    (c, serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null))
}

fn post_json(addr: &str, path: &str, v: &serde_json::Value) -> (u16, serde_json::Value) {
    let (c, _, b) = http(addr, "POST", path, &[("Content-Type", "application/json".into())], v.to_string().as_bytes());
    (c, serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null))
}

fn x_request() -> serde_json::Value {
    serde_json::json!({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [[1, 2, 3, 4], [-1, 0.5, 0, 2]]}]})
}

#[test]
fn serve_speaks_v2_and_matches_sandload_run_for_a_triton_client() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let srv = Server::start(&[("dense", "dense.h5")], &[]);
    srv.wait_notify("READY=1");
    let a = &srv.addr;
    assert_eq!(get(a, "/v2/health/live").0, 200);
    assert_eq!(get(a, "/v2/health/ready"), (200, serde_json::json!({"ready": true})));
    assert_eq!(get(a, "/v2").1["name"], "sandload");
    let (c, meta) = get(a, "/v2/models/dense");
    assert_eq!(c, 200);
    assert_eq!(meta["inputs"][0], serde_json::json!({"name": "x", "datatype": "FP32", "shape": [-1, 4]}));
    assert_eq!(get(a, "/v2/models/dense/versions/1/ready").0, 200);
    assert_eq!(get(a, "/v2/models/dense/versions/7").0, 404);

    // JSON infer equals `sandload run` on the same input.
    let (c, r) = post_json(a, "/v2/models/dense/infer", &x_request());
    assert_eq!(c, 200, "{r}");
    let want = read_npz_f32(&f.model("reference.npz"), "dense");
    let got: Vec<f32> =
        r["outputs"][0]["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(got, want);

    // The real Triton client, JSON and binary modes.
    let client = repo().join(".venv-client/bin/python");
    if client.exists() {
        let prefix = f.dir.parent().unwrap().join(random_token("triton"));
        let out = Command::new(&client)
            .arg(repo().join("tests/clients/triton_infer.py"))
            .args([a.as_str(), "dense"])
            .arg(f.model("x.npy"))
            .arg(&prefix)
            .output()
            .unwrap();
        assert!(out.status.success(), "tritonclient: {}", String::from_utf8_lossy(&out.stderr));
        println!("{}", String::from_utf8_lossy(&out.stdout));
        for mode in ["json", "binary"] {
            let (_, v) = read_npy_f32(&std::path::PathBuf::from(format!("{}.{mode}.npy", prefix.display())));
            assert_eq!(v, want, "{mode}");
        }
    } else if std::env::var("SANDLOAD_REQUIRE_SANDBOX").as_deref() == Ok("1") {
        panic!("no .venv-client: run scripts/setup-client.sh");
    }
    assert_eq!(srv.stop(), 0);
}

#[test]
fn malformed_requests_get_the_right_4xx() {
    if !sandbox_available() {
        return;
    }
    let srv = Server::start(&[("dense", "dense.h5")], &["--max-body", "1M"]);
    srv.wait_notify("READY=1");
    let a = &srv.addr;
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"{not json".to_vec(), 400),
        ("[".repeat(100_000).into_bytes(), 400),
        (vec![b' '; 2 << 20], 413),
        (
            serde_json::json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]})
                .to_string()
                .into_bytes(),
            400,
        ),
        (
            serde_json::json!({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3, 4]}]})
                .to_string()
                .into_bytes(),
            400,
        ),
        (
            serde_json::json!({"inputs": [{"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
                .to_string()
                .into_bytes(),
            400,
        ),
        (
            serde_json::json!({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]}]})
                .to_string()
                .into_bytes(),
            400,
        ),
    ];
    for (body, want) in cases {
        let (c, _, b) = http(a, "POST", "/v2/models/dense/infer", &[], &body);
        assert_eq!(c, want, "{}", String::from_utf8_lossy(&b));
        if c != 413 {
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            assert!(v["error"].is_string(), "{v}");
        }
    }
    assert_eq!(post_json(a, "/v2/models/nope/infer", &x_request()).0, 404);
    // Binary extension with a short blob.
    let head = serde_json::json!({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}).to_string();
    let mut body = head.clone().into_bytes();
    body.extend_from_slice(&[0u8; 8]);
    let (c, _, _) = http(
        a,
        "POST",
        "/v2/models/dense/infer",
        &[("Inference-Header-Content-Length", head.len().to_string())],
        &body,
    );
    assert_eq!(c, 400);
    // The server is still fine.
    assert_eq!(post_json(a, "/v2/models/dense/infer", &x_request()).0, 200);
    assert_eq!(srv.stop(), 0);
}

#[test]
fn a_crash_looping_model_does_not_disturb_a_benign_one() {
    if !sandbox_available() {
        return;
    }
    let srv = Server::start(&[("dense", "dense.h5"), ("evil", "hostile_crash_at_predict.h5")], &["--workers", "1"]);
    srv.wait_notify("READY=1");
    let a = srv.addr.clone();
    let pid = srv.child.id();
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    // Warm up once so lazily opened fds exist, then count.
    assert_eq!(post_json(&a, "/v2/models/dense/infer", &x_request()).0, 200);
    let fds_before = fds();
    let benign: Vec<_> = (0..3)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || {
                (0..20).filter(|_| post_json(&a, "/v2/models/dense/infer", &x_request()).0 == 200).count()
            })
        })
        .collect();
    let mut evil_codes = Vec::new();
    for _ in 0..6 {
        evil_codes.push(post_json(&a, "/v2/models/evil/infer", &x_request()).0);
    }
    let ok: usize = benign.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(ok, 60, "every benign request must succeed");
    assert!(evil_codes.iter().all(|c| *c == 500 || *c == 503), "{evil_codes:?}");
    let metrics = String::from_utf8(http(&a, "GET", "/metrics", &[], b"").2).unwrap();
    assert!(metrics.contains("sandload_worker_restarts_total{model=\"evil\""), "{metrics}");
    assert!(metrics.contains("sandload_violations_total{model=\"evil\""), "{metrics}");
    std::thread::sleep(Duration::from_secs(1));
    let fds_after = fds();
    assert!(fds_after <= fds_before + 4, "fd growth: {fds_before} -> {fds_after}");
    let log = srv.log.lock().unwrap().clone();
    assert!(log.contains("model=evil event=worker_failed"), "{log}");
    assert_eq!(srv.stop(), 0);
    std::thread::sleep(Duration::from_millis(300));
    let left = processes_in_cgroup(&format!("sandload-serve-{pid}-"));
    assert!(left.is_empty(), "sandboxes outlived the server: {left:?}");
}

#[test]
fn sigterm_during_load_drains_and_exits_0_with_stopping_notified() {
    if !sandbox_available() {
        return;
    }
    let srv = Server::start(&[("dense", "dense.h5")], &[]);
    std::thread::sleep(Duration::from_millis(300));
    let pid = srv.child.id();
    let sock = srv.notify.try_clone().unwrap();
    let code = srv.stop();
    assert_eq!(code, 0);
    let mut buf = [0u8; 512];
    let mut seen = String::new();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while let Ok(n) = sock.recv(&mut buf) {
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if seen.contains("STOPPING=1") {
            break;
        }
    }
    assert!(seen.contains("STOPPING=1"), "{seen:?}");
    std::thread::sleep(Duration::from_millis(300));
    let left = processes_in_cgroup(&format!("sandload-serve-{pid}-"));
    assert!(left.is_empty(), "sandboxes outlived the server: {left:?}");
}
