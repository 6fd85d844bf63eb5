//! Hostile models, one behaviour each, judged by looking at the host afterwards. Where it is
//! safe, the same payload is shown to succeed with only the layers under test switched off
//! (`--unsafe-disable-layer`), so each test proves its layer and cannot pass vacuously.

mod common;

use common::*;

fn run_model(model: &str, extra: &[&str]) -> Run {
    let f = fixtures();
    let m = f.model(model);
    let x = f.model("x.npy");
    let mut args = vec![m.to_str().unwrap(), "-i", x.to_str().unwrap(), "-v", "--timeout", "120"];
    args.extend_from_slice(extra);
    let r = sandload_run(&args);
    let t = r.all_text();
    for canary in [&f.env_canary, &f.home_canary, &f.beside_canary] {
        assert!(!t.contains(canary.as_str()), "secret canary leaked in {model}");
    }
    r
}

fn disable(layers: &[&str]) -> Vec<String> {
    layers.iter().flat_map(|l| ["--unsafe-disable-layer".to_string(), l.to_string()]).collect()
}

fn run_without(model: &str, layers: &[&str]) -> Run {
    let d = disable(layers);
    let a: Vec<&str> = d.iter().map(String::as_str).collect();
    run_model(model, &a)
}

// Landlock has no UDP rules: against UDP the netns and seccomp layers each suffice, which the
// full-sandbox run above checks through the listeners_hit() in `udp_and_unix_sockets_...`.
#[test]
fn sandbox_blocks_tcp_and_each_of_netns_seccomp_landlock_alone_suffices() {
    if !sandbox_available() {
        return;
    }
    let _serial = listener_lock();
    let f = fixtures();
    while f.tcp_hit() {}
    for layers in [&[][..], &["seccomp", "landlock"], &["netns", "landlock"], &["netns", "seccomp"]] {
        let r = run_without("hostile_net.h5", layers);
        assert_eq!(r.code, 0, "{layers:?}: {}", r.stderr);
        assert!(r.child_out().contains("NET-BLOCKED tcp"), "{layers:?}: {}", r.all_text());
        assert!(!r.child_out().contains("NET-OK tcp"), "{layers:?}");
        assert!(!f.tcp_hit(), "{layers:?}: the TCP listener on the host was reached");
    }
    // All three off: the same payload reaches the test's TCP listener (the test can fail).
    let r = run_without("hostile_net.h5", &["netns", "seccomp", "landlock"]);
    assert!(r.child_out().contains("NET-OK tcp"), "{}", r.all_text());
    assert!(f.tcp_hit(), "control run should reach the listener");
}

#[test]
fn udp_and_unix_sockets_reach_nothing_on_the_host() {
    if !sandbox_available() {
        return;
    }
    let _serial = listener_lock();
    let f = fixtures();
    while f.listeners_hit() {}
    for layers in [&[][..], &["seccomp", "landlock"], &["netns", "landlock"]] {
        let r = run_without("hostile_net.h5", layers);
        assert!(r.child_out().contains("NET-BLOCKED udp"), "{layers:?}: {}", r.child_out());
        assert!(!f.listeners_hit(), "{layers:?}: a listener on the host was reached");
    }
}

#[test]
fn landlock_scopes_abstract_unix_sockets_when_the_netns_is_off() {
    if !sandbox_available() {
        return;
    }
    let _serial = listener_lock();
    let r = run_without("hostile_net.h5", &["netns", "seccomp"]);
    assert!(r.child_out().contains("NET-BLOCKED abstract"), "{}", r.all_text());
    let r = run_without("hostile_net.h5", &["netns", "seccomp", "landlock"]);
    assert!(r.child_out().contains("NET-OK abstract"), "{}", r.all_text());
}

#[test]
fn sandbox_blocks_exec_of_a_shell_and_reports_the_attempts() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let r = run_model("hostile_exec.h5", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let events = r.report["events"].to_string();
    assert!(events.contains("os.system") && events.contains("subprocess.Popen"), "{events}");
    assert!(r.child_out().contains("EXEC-BLOCKED subprocess"), "{}", r.all_text());
    assert_eq!(std::fs::read_to_string(&f.host_file).unwrap(), "untouched\n");
    assert!(host_processes_with("hostile_exec").is_empty());
}

#[test]
fn landlock_blocks_exec_of_binaries_in_view_when_seccomp_is_off() {
    if !sandbox_available() {
        return;
    }
    // libc.so.6 is executable and inside the view (it prints its version when run).
    let r = run_without("hostile_exec.h5", &["seccomp"]);
    assert!(!r.child_out().contains("GNU C Library"), "{}", r.all_text());
    let r = run_without("hostile_exec.h5", &["seccomp", "landlock"]);
    assert!(r.child_out().contains("GNU C Library"), "control run should execute it: {}", r.all_text());
}

#[test]
fn fork_bomb_and_daemons_are_blocked_and_nothing_outlives_the_run() {
    if !sandbox_available() {
        return;
    }
    let r = run_model("hostile_fork.h5", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.child_out().contains("FORK-BLOCKED"), "{}", r.all_text());
    let r = run_model("hostile_daemon.h5", &[]);
    assert!(r.child_out().contains("DAEMON-BLOCKED"), "{}", r.all_text());
    // Without seccomp the forks and the double-forked daemon happen, and the pid namespace
    // still takes every one of them down with the run.
    let r = run_without("hostile_fork.h5", &["seccomp"]);
    assert!(r.child_out().contains("FORKED 64"), "{}", r.all_text());
    let r = run_without("hostile_daemon.h5", &["seccomp"]);
    assert!(!r.child_out().contains("DAEMON-BLOCKED"), "{}", r.all_text());
    std::thread::sleep(std::time::Duration::from_millis(300));
    for m in ["hostile_fork", "hostile_daemon"] {
        let left = host_processes_with(m);
        assert!(left.is_empty(), "{m} outlived sandload: {left:?}");
    }
}

#[test]
fn memory_bomb_hits_the_limit_with_exit_6() {
    if !sandbox_available() {
        return;
    }
    let r = run_model("hostile_memory.h5", &["--memory", "2G"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
}

#[test]
fn output_bomb_is_capped_with_exit_6_and_the_supervisor_stays_small() {
    if !sandbox_available() {
        return;
    }
    let r = run_model("hostile_bigout.h5", &["--max-output-bytes", "64M", "--memory", "6G"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    let peak = r.report["sandbox"]["supervisor_peak_rss"].as_u64().unwrap();
    eprintln!("supervisor VmHWM under the output bomb: {} MiB", peak >> 20);
    assert!(peak < 64 << 20);
}

#[test]
fn stdout_stderr_flood_is_bounded_and_escaped() {
    if !sandbox_available() {
        return;
    }
    let r = run_model("hostile_flood.h5", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.report["child"]["stdout_bytes"].as_u64().unwrap() > 1 << 30);
    assert!(r.report["child"]["stdout_tail"].as_str().unwrap().len() <= 5 * 65536);
    assert!(!r.stderr.contains('\x1b'), "a raw escape sequence reached the terminal");
    let peak = r.report["sandbox"]["supervisor_peak_rss"].as_u64().unwrap();
    eprintln!("supervisor VmHWM under the flood: {} MiB", peak >> 20);
    assert!(peak < 64 << 20);
}

#[test]
fn forged_broker_frames_are_a_breach_with_exit_4() {
    if !sandbox_available() {
        return;
    }
    let r = run_model("hostile_forge.h5", &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("protocol breach"), "{}", r.stderr);
}

#[test]
fn killing_the_parent_or_a_host_process_fails() {
    if !sandbox_available() {
        return;
    }
    let r = run_model("hostile_kill.h5", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.child_out().contains("KILL-OK"), "{}", r.all_text());
    let pid = fixtures().victim.id();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the host process was killed");
    // The ptrace payload is killed by seccomp.
    let r = run_model("hostile_ptrace.h5", &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("SIGSYS"), "{}", r.stderr);
}

#[test]
fn kernel_attack_surface_is_killed_by_seccomp() {
    if !sandbox_available() {
        return;
    }
    for (name, _) in KERNEL_SYSCALLS {
        let r = run_model(&format!("hostile_kernel_{name}.h5"), &[]);
        assert_eq!(r.code, 4, "{name}: {}", r.stderr);
        assert_eq!(r.report["child"]["signal"], "SIGSYS", "{name}");
        // The kernel's audit record names the call (root can read /dev/kmsg).
        if nix::unistd::Uid::effective().is_root() {
            assert_eq!(r.report["child"]["seccomp_syscall"], *name, "{name}: {}", r.stderr);
        }
    }
    let r = run_model("hostile_tiocsti.h5", &[]);
    assert_eq!(r.code, 4, "TIOCSTI with high bits: {}", r.stderr);
}

#[test]
fn a_model_that_raises_is_exit_3_and_one_that_hangs_at_exit_is_cut_short() {
    if !sandbox_available() {
        return;
    }
    let r = run_model("hostile_crash.h5", &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("payload raised on purpose"), "{}", r.stderr);
    let r = run_model("hostile_hang_exit.h5", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.elapsed.as_secs() < 60, "{:?}", r.elapsed);
}

#[test]
fn host_reads_back_the_confinement_of_the_workload() {
    if !sandbox_available() {
        return;
    }
    let r = run_model("lambda_benign.h5", &[]);
    assert_eq!(r.code, 0);
    let v = &r.report["sandbox"]["verified"];
    assert_eq!(v["NoNewPrivs"], "1");
    assert_eq!(v["Seccomp"], "2");
    assert_eq!(v["CapEff"], "0000000000000000");
    assert_eq!(v["CapBnd"], "0000000000000000");
    if nix::unistd::Uid::effective().is_root() {
        assert!(v["Uid"].as_str().unwrap().starts_with("65534"), "{v}");
    }
}

#[test]
fn max_procs_caps_processes_and_threads_even_without_seccomp() {
    if !sandbox_available() {
        return;
    }
    let r = run_without("hostile_fork.h5", &["seccomp"]);
    assert!(r.child_out().contains("FORKED 64"), "{}", r.child_out());
    // The limit counts TensorFlow's own threads too: the bomb is stopped, the run ends with 6.
    let r = run_model("hostile_fork.h5", &["--unsafe-disable-layer", "seccomp", "--max-procs", "100"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(!r.child_out().contains("FORKED 64"), "{}", r.child_out());
}

#[test]
fn ctrl_c_kills_and_reaps_the_whole_tree_with_exit_130() {
    if !sandbox_available() {
        return;
    }
    let f = fixtures();
    let mut child = std::process::Command::new(BIN)
        .arg("run")
        .arg(f.model("hostile_spin.h5"))
        .arg("-i")
        .arg(f.model("x.npy"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Let the model load and start spinning.
    std::thread::sleep(std::time::Duration::from_secs(6));
    std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "sandload ignored Ctrl-C");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let left = processes_in_cgroup(&format!("sandload-{pid}-"));
    assert!(left.is_empty(), "processes outlived sandload: {left:?}");
}
