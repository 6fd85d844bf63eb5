//! Shared test harness: the real binary, real models made by the real TensorFlow 2.12 from
//! `scripts/setup-python.sh`, and per-run random canaries. A test that cannot run here skips
//! with a message, unless SANDLOAD_REQUIRE_SANDBOX=1 (set by .ci/run), where it fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sandload");

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn venv_python() -> PathBuf {
    repo().join(".venv/bin/python")
}

/// Returns false (after saying why) when the host cannot run sandbox tests; panics instead
/// when SANDLOAD_REQUIRE_SANDBOX=1.
pub fn sandbox_available() -> bool {
    let why = if !venv_python().exists() {
        Some("no .venv: run scripts/setup-python.sh")
    } else if !Path::new("/proc/self/ns/user").exists() {
        Some("no user namespaces")
    } else {
        None
    };
    match why {
        None => true,
        Some(w) if std::env::var("SANDLOAD_REQUIRE_SANDBOX").as_deref() == Ok("1") => {
            panic!("SANDLOAD_REQUIRE_SANDBOX=1 but this host cannot run sandbox tests: {w}")
        }
        Some(w) => {
            eprintln!("SKIP: {w}");
            false
        }
    }
}

pub fn random_token(tag: &str) -> String {
    let mut b = [0u8; 12];
    let f = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    f.expect("urandom");
    format!("SANDLOAD_{tag}_{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

pub struct Fixtures {
    pub dir: PathBuf,
    /// Canary tokens the hostile payloads may try to exfiltrate or plant.
    pub token: String,
    pub env_canary: String,
    pub home_canary: String,
    pub beside_canary: String,
    pub home: PathBuf,
    pub port: u16,
    pub udp_port: u16,
    pub unix_path: PathBuf,
    pub abstract_name: String,
    pub host_file: PathBuf,
    pub listener: std::net::TcpListener,
    pub udp: std::net::UdpSocket,
    pub unix: std::os::unix::net::UnixListener,
    pub abstract_listener: std::os::unix::net::UnixListener,
    /// A host process the payloads try to kill; it must survive.
    pub victim: std::process::Child,
    /// An executable inside the sandbox's view that Landlock does not let it run.
    pub present_exe: PathBuf,
}

pub const KERNEL_SYSCALLS: &[(&str, i64)] = &[
    ("io_uring_setup", 425),
    ("bpf", 321),
    ("userfaultfd", 323),
    ("perf_event_open", 298),
    ("keyctl", 250),
    ("unshare", 272),
    ("mount", 165),
    ("open_by_handle_at", 304),
    ("ptrace", 101),
    ("setns", 308),
];

static VICTIM: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn kill_victim() {
    let pid = VICTIM.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) on the one helper process this harness started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

/// Generates every model once per test binary (one TensorFlow import, ~5 s).
pub fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let base = repo().join("target/test-fixtures");
        std::fs::create_dir_all(&base).unwrap();
        let dir = base.join(random_token("fx"));
        std::fs::create_dir_all(&dir).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_nonblocking(true).unwrap();
        let unix_path = dir.join("host.sock");
        let unix = std::os::unix::net::UnixListener::bind(&unix_path).unwrap();
        unix.set_nonblocking(true).unwrap();
        let abstract_name = random_token("abs");
        let abstract_listener = {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
            let l = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
            l.set_nonblocking(true).unwrap();
            l
        };
        let home = dir.join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let home_canary = random_token("home");
        std::fs::write(home.join(".ssh/id_rsa"), &home_canary).unwrap();
        let beside_canary = random_token("beside");
        let models = dir.join("models");
        std::fs::create_dir_all(&models).unwrap();
        std::fs::write(models.join("secret.txt"), &beside_canary).unwrap();
        let host_file = dir.join("host-file.txt");
        std::fs::write(&host_file, "untouched\n").unwrap();
        let token = random_token("tok");
        let victim = Command::new("sleep").arg("900").stdin(Stdio::null()).spawn().unwrap();
        VICTIM.store(victim.id(), std::sync::atomic::Ordering::SeqCst);
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe { libc::atexit(kill_victim) };
        let present_exe = PathBuf::from("/usr/lib/x86_64-linux-gnu/libc.so.6");
        let kernel: serde_json::Map<String, serde_json::Value> =
            KERNEL_SYSCALLS.iter().map(|(n, nr)| (n.to_string(), (*nr).into())).collect();
        let params = serde_json::json!({
            "token": token, "port": listener.local_addr().unwrap().port(),
            "udp_port": udp.local_addr().unwrap().port(), "unix_path": unix_path, "abstract": abstract_name,
            "host_file": host_file, "beside": models.join("secret.txt"), "model_file": models.join("hostile_write.h5"),
            "host_pid": victim.id(), "kernel_syscalls": kernel, "present_exe": present_exe,
        });
        let pfile = dir.join("params.json");
        std::fs::write(&pfile, params.to_string()).unwrap();
        let t = Instant::now();
        let out = Command::new(venv_python())
            .arg(repo().join("tests/fixtures/gen_models.py"))
            .arg(&models)
            .arg(&pfile)
            .env("TF_CPP_MIN_LOG_LEVEL", "2")
            .output()
            .expect("run the fixture generator");
        assert!(out.status.success(), "fixture generator failed: {}", String::from_utf8_lossy(&out.stderr));
        eprintln!("fixtures generated in {:?}", t.elapsed());
        // The sandbox reads models as an unprivileged uid.
        Command::new("chmod").args(["-R", "o+rX"]).arg(&dir).status().unwrap();
        Fixtures {
            dir: models,
            token,
            env_canary: random_token("env"),
            home_canary,
            beside_canary,
            home,
            port: listener.local_addr().unwrap().port(),
            udp_port: udp.local_addr().unwrap().port(),
            unix_path,
            abstract_name,
            host_file,
            listener,
            udp,
            unix,
            abstract_listener,
            victim,
            present_exe,
        }
    })
}

impl Fixtures {
    pub fn model(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// True if the TCP listener received a connection.
    pub fn tcp_hit(&self) -> bool {
        self.listener.accept().is_ok()
    }

    /// True if any of the test's listeners received a connection or datagram.
    pub fn listeners_hit(&self) -> bool {
        let mut buf = [0u8; 256];
        self.listener.accept().is_ok()
            || self.udp.recv_from(&mut buf).is_ok()
            || self.unix.accept().is_ok()
            || self.abstract_listener.accept().is_ok()
    }
}

/// Tests that read the shared listeners take this lock, so one test's control run (which is
/// meant to reach a listener) cannot be mistaken for another test's leak.
pub fn listener_lock() -> std::sync::MutexGuard<'static, ()> {
    static L: std::sync::Mutex<()> = std::sync::Mutex::new(());
    L.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: serde_json::Value,
    pub elapsed: Duration,
}

impl Run {
    /// What the child printed (the payloads print their markers here). Not the report as a
    /// whole: the scan findings in it quote the payload's string constants.
    pub fn child_out(&self) -> String {
        format!(
            "{}\n{}",
            self.report["child"]["stdout_tail"].as_str().unwrap_or(""),
            self.report["child"]["stderr_tail"].as_str().unwrap_or("")
        )
    }

    pub fn all_text(&self) -> String {
        format!("{}\n{}\n{}", self.stdout, self.stderr, self.report)
    }
}

/// Runs `sandload run` with a report, the canary env var and a canary HOME, bounded in time.
pub fn sandload_run(args: &[&str]) -> Run {
    let f = fixtures();
    let report = f.dir.parent().unwrap().join(format!("{}.json", random_token("report")));
    let t = Instant::now();
    let child = Command::new(BIN)
        .arg("run")
        .args(args)
        .arg("--report")
        .arg(&report)
        .env("SANDLOAD_CANARY_ENV", &f.env_canary)
        .env("HOME", &f.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sandload");
    let out = wait_bounded(child, Duration::from_secs(600));
    let report_v =
        std::fs::read(&report).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(serde_json::Value::Null);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: report_v,
        elapsed: t.elapsed(),
    }
}

pub fn sandload(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(child, Duration::from_secs(600))
}

fn wait_bounded(child: std::process::Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY-free: kill the one pid we spawned.
            Command::new("kill").args(["-9", &pid.to_string()]).status().ok();
            panic!("sandload did not finish within {limit:?}");
        }
    }
}

/// Processes on the host whose command line or environment contains `needle`.
pub fn host_processes_with(needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == std::process::id().to_string() {
            continue;
        }
        for f in ["cmdline", "environ"] {
            if let Ok(b) = std::fs::read(e.path().join(f)) {
                if String::from_utf8_lossy(&b).contains(needle) {
                    hits.push(format!(
                        "{name}: {}",
                        String::from_utf8_lossy(&b).replace('\0', " ").chars().take(200).collect::<String>()
                    ));
                }
            }
        }
    }
    hits
}

/// Processes whose cgroup path contains `needle` (sandload names each sandbox's cgroup after
/// its supervisor's pid, so this finds exactly one supervisor's leftovers).
pub fn processes_in_cgroup(needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cg) = std::fs::read_to_string(e.path().join("cgroup")) {
            if cg.contains(needle) {
                hits.push(format!("{}: {}", e.file_name().to_string_lossy(), cg.lines().next().unwrap_or("")));
            }
        }
    }
    hits
}

/// Loads a .npy written by sandload as f32 values.
pub fn read_npy_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().unwrap())
}

pub fn read_npz_f32(path: &Path, name: &str) -> Vec<f32> {
    let mut npz = npyz::npz::NpzArchive::open(path).unwrap();
    npz.by_name(name).unwrap().unwrap().into_vec::<f32>().unwrap()
}
