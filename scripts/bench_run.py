"""Runs every benchmark of issue 5 and writes docs/BENCHMARKS.md. Called by scripts/bench.sh,
which builds sandload, sets up the Python stack and the fixtures first.

usage: python bench_run.py --sandload BIN --python VENV_PYTHON --work DIR --doc FILE

Every comparison runs its commands in one hyperfine invocation per round, several rounds,
with the command order rotated each round (hyperfine runs one command's batch after the
other; rotating and pooling the per-run times of all rounds is how the commands alternate).
Medians and ratios come from the pooled times, so slow drift on a shared machine hits every
command alike.
"""
import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_broker  # noqa: E402
import bench_trace  # noqa: E402

SANDBOX_ENV = {
    # What sandload gives the interpreter (src/runner/spawn.rs); the unsandboxed and bwrap
    # runs of the end-to-end comparison get the same.
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONNOUSERSITE": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def out_of(cmd):
    try:
        p = sh(cmd, timeout=60)
        return (p.stdout or p.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- hyperfine, alternating
def hyperfine(name, commands, rounds, runs, warmup, work):
    """commands: {label: command string}. Returns {label: [seconds...]} pooled over rounds."""
    labels = list(commands)
    pooled = {k: [] for k in labels}
    per_round = []
    invocations = []
    for r in range(rounds):
        order = labels[r % len(labels):] + labels[: r % len(labels)]
        export = os.path.join(work, "hyperfine-%s-%d.json" % (name, r))
        args = ["hyperfine", "-N", "--style", "basic", "--runs", str(runs), "--export-json", export]
        if warmup:
            args += ["--warmup", str(warmup if r == 0 else min(warmup, 2))]
        for k in order:
            args += ["-n", k, commands[k]]
        if r == 0:
            invocations.append(" ".join(shlex.quote(a) for a in args))
        logf = os.path.join(work, "hyperfine-%s-%d.log" % (name, r))
        with open(logf, "w") as lf:
            p = subprocess.run(args, stdout=lf, stderr=subprocess.STDOUT)
        if p.returncode != 0:
            sys.exit("hyperfine failed, see %s" % logf)
        this = {}
        for res in json.load(open(export))["results"]:
            pooled[res["command"]].extend(res["times"])
            this[res["command"]] = res["times"]
        per_round.append(this)
        if (r + 1) % max(1, rounds // 5) == 0 or r + 1 == rounds:
            log("%s: round %d/%d done" % (name, r + 1, rounds))
    return pooled, per_round, invocations


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def iqr(xs):
    if len(xs) < 4:
        return float("nan")
    q = statistics.quantiles(xs, n=4)
    return q[2] - q[0]


# ---------------------------------------------------------------- the benchmarks
def bwrap_prefix(python, venv, prefix, binds=(), rw=()):
    a = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
    for p in [prefix, venv, "/usr/lib", "/usr/lib64", "/etc/ld.so.cache", "/etc/localtime", *binds]:
        if os.path.islink(p):
            continue  # recreated below when it is a top-level merged-/usr link
        if os.path.exists(p):
            a += ["--ro-bind", p, p]
    for link in ["/lib", "/lib64"]:
        if os.path.islink(link):
            a += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            a += ["--ro-bind", link, link]
    for p in rw:
        a += ["--bind", p, p]
    a += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--clearenv"]
    for k, v in SANDBOX_ENV.items():
        a += ["--setenv", k, v]
    return a


def q(args):
    return " ".join(shlex.quote(a) for a in args)


def spawn_bench(ctx, rounds, runs):
    py = ctx["python"]
    cmds = {
        "bare python -c pass": q([py, "-c", "pass"]),
        "unshare -rn": q(["unshare", "-rn", py, "-c", "pass"]),
        "bwrap": q(bwrap_prefix(py, ctx["venv"], ctx["prefix"]) + [py, "-c", "pass"]),
        "sandload __bench-exec": q([ctx["sandload"], "__bench-exec", "--python", py, "--", "-c", "pass"]),
    }
    times, per_round, inv = hyperfine("spawn", cmds, rounds, runs, 5, ctx["work"])
    return {"commands": cmds, "times": times, "rounds": per_round, "invocations": inv}


def e2e_bench(ctx, rounds, runs):
    py, w = ctx["python"], ctx["work"]
    model, x = os.path.join(w, "dense.h5"), os.path.join(w, "x1.npy")
    outdir = os.path.join(w, "e2e-out")
    os.makedirs(outdir, exist_ok=True)
    os.chmod(outdir, 0o777)
    loader = os.path.join(HERE, "bench_bare_loader.py")
    env = ["env", "-i"] + ["%s=%s" % kv for kv in SANDBOX_ENV.items()]
    cmds = {
        "bare loader": q(env + [py, "-I", "-B", loader, model, x, os.path.join(outdir, "y_bare.npy")]),
        "sandload run": q([ctx["sandload"], "run", model, "-i", x, "-o", os.path.join(outdir, "y_sandload.npy"),
                           "--report", os.path.join(outdir, "report.json")]),
        "bare loader in bwrap": q(bwrap_prefix(py, ctx["venv"], ctx["prefix"], binds=[HERE, model, x], rw=[outdir])
                                  + [py, "-I", "-B", loader, model, x, os.path.join(outdir, "y_bwrap.npy")]),
    }
    times, per_round, inv = hyperfine("e2e", cmds, rounds, runs, 1, w)
    return {"commands": cmds, "times": times, "rounds": per_round, "invocations": inv}


def phases(ctx, n):
    """Phase timings of `sandload run` (its report) and of the bare loader (in-process)."""
    w = ctx["work"]
    model, x = os.path.join(w, "dense.h5"), os.path.join(w, "x1.npy")
    reps, bare = [], []
    for i in range(n):
        r = os.path.join(w, "phase-report-%d.json" % i)
        p = sh([ctx["sandload"], "run", model, "-i", x, "-o", os.path.join(w, "phase-y.npy"), "--report", r])
        if p.returncode != 0:
            sys.exit("sandload run failed: " + p.stderr[-2000:])
        reps.append(json.load(open(r)))
        p = sh([ctx["python"], "-I", "-B", os.path.join(HERE, "bench_bare_loader.py"), model, x,
                os.path.join(w, "phase-yb.npy")], env=SANDBOX_ENV)
        bare.append(json.loads(p.stderr.strip().splitlines()[-1]))
    return reps, bare


def cgroup_join_cost(py, rounds=6):
    """The cost that made sandload join v1 cgroups through `tasks`: the same fresh process
    writes 0 into a new v1 memory cgroup's cgroup.procs or tasks, with pauses in between so
    the kernel's rcu_sync goes idle as it does between two runs."""
    code = r"""
import os, sys, time
mem = [l.split(':', 2)[2] for l in open('/proc/self/cgroup').read().splitlines() if l.split(':')[1] == 'memory'][0]
base = '/sys/fs/cgroup/memory' + mem
d = base + '/sandload-bench-join-%d' % os.getpid()
os.mkdir(d)
t = time.perf_counter()
with open(d + '/' + sys.argv[1], 'w') as f:
    f.write('0')
dt = time.perf_counter() - t
with open(base + '/tasks', 'w') as f:
    f.write('0')
os.rmdir(d)
print(dt)
"""
    if not os.path.isdir("/sys/fs/cgroup/memory") or os.geteuid() != 0:
        return None
    res = {"cgroup.procs": [], "tasks": []}
    for _ in range(rounds):
        for f in res:
            time.sleep(0.5)
            p = sh([py, "-c", code, f])
            if p.returncode != 0:
                return None
            res[f].append(float(p.stdout) * 1000)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sandload", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke test of the harness)")
    ap.add_argument("--render-only", action="store_true", help="rewrite the doc from WORK/results.json")
    a = ap.parse_args()
    import bench_doc  # noqa: E402  (kept apart: formatting only)

    if a.render_only:
        path = os.path.join(a.work, "results.json")
        r = json.load(open(path))
        # Keep the time the numbers were measured, not the time the text was rewritten.
        r["machine"].setdefault("generated", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(path))))
        reps = [{"timings": t} for t in r["phases"]["sandload"]]
        doc = bench_doc.render(r["machine"], r["spawn"], r["trace"], r["trace_total"], r["join"], r["e2e"], reps,
                               r["phases"]["bare"], r["broker"])
        with open(a.doc, "w") as f:
            f.write(doc)
        return
    t_start = time.monotonic()
    venv = os.path.dirname(os.path.dirname(a.python))
    prefix = sh([a.python, "-c", "import sys; print(sys.base_prefix)"]).stdout.strip()
    ctx = {"sandload": a.sandload, "python": a.python, "venv": venv, "prefix": prefix, "work": a.work}
    quick = a.quick
    load_before = os.getloadavg()

    log("spawn overhead")
    # Many short rounds: a burst of other work on the machine then hits every command alike.
    spawn = spawn_bench(ctx, rounds=4 if quick else 30, runs=5)
    log("per-step trace")
    trace_runs = 10 if quick else 40
    trace_rows, trace_total = bench_trace.collect(a.sandload, trace_runs, ["-c", "pass"])
    log("cgroup join cost")
    join = cgroup_join_cost(a.python, 2 if quick else 6)
    log("end to end")
    # One run of each command per round: neighbouring runs share the machine's load, so the
    # per-round ratios (paired) cancel slow drift.
    e2e = e2e_bench(ctx, rounds=3 if quick else 30, runs=1)
    log("phase timings")
    reps, bare = phases(ctx, 2 if quick else 5)
    log("broker throughput and supervisor memory")
    sizes = [1, 64] if quick else [1, 64, 1024]
    broker = bench_broker.measure(a.sandload, os.path.join(a.work, "identity.h5"), os.path.join(a.work, "broker"),
                                  1 if quick else 3, sizes, big_runs=1 if quick else 3)
    load_after = os.getloadavg()
    elapsed = time.monotonic() - t_start

    machine = {
        "kernel": platform.release(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "cpus": os.cpu_count(),
        "mem_gib": int(open("/proc/meminfo").readline().split()[1]) / (1 << 20),
        "os": next((l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release") if l.startswith("PRETTY_NAME")), "?"),
        "hyperfine": out_of(["hyperfine", "--version"]),
        "bwrap": out_of(["bwrap", "--version"]),
        "rustc": out_of(["rustc", "--version"]),
        "python": out_of([a.python, "--version"]),
        "git": out_of(["git", "-C", os.path.dirname(HERE), "describe", "--always", "--dirty"]),
        "load_before": load_before,
        "load_after": load_after,
        "elapsed": elapsed,
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "trace_runs": trace_runs,
        "report": reps[-1],
    }
    doc = bench_doc.render(machine, spawn, trace_rows, trace_total, join, e2e, reps, bare, broker)
    with open(a.doc, "w") as f:
        f.write(doc)
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump({"machine": machine, "spawn": spawn, "trace": trace_rows, "trace_total": trace_total, "join": join, "e2e": e2e,
                   "phases": {"sandload": [r["timings"] for r in reps], "bare": bare}, "broker": broker}, f, indent=1)
    log("wrote %s in %.0f s" % (a.doc, elapsed))


if __name__ == "__main__":
    main()
