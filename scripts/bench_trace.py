#!/usr/bin/env python3
"""Per-step cost of sandload's confinement: runs `sandload __bench-exec -- ARGS` N times with
SANDLOAD_TRACE=1 and prints the median time of each step (from the previous trace mark) as a
Markdown table. Usage: bench_trace.py SANDLOAD N [ARGS...] (default ARGS: -c pass)."""
import os
import statistics
import subprocess
import sys

ORDER = [
    ("supervisor.start", "supervisor: `__bench-exec` entered"),
    ("supervisor.policy", "supervisor: load policy + resolve interpreter"),
    ("supervisor.cgroup", "supervisor: create the per-run cgroup(s)"),
    ("supervisor.plan", "supervisor: build the plan (seccomp compiled, binds resolved)"),
    ("helper.start", "spawn: fork + exec `/proc/self/exe __sandbox-helper`, helper `main`"),
    ("plan.read", "helper: read the plan"),
    ("sanitise", "1 sanitise (pdeathsig, close_range, setsid)"),
    ("cgroup.join", "2 join the cgroup(s)"),
    ("namespaces.unshare", "3 unshare mnt/pid/net/ipc/uts/cgroup"),
    ("init.forked", "4 fork the pid-namespace init"),
    ("mounts", "5 mounts + pivot_root"),
    ("identity", "6 drop to uid 65534 + inner user namespace"),
    ("rlimits.caps.nnp", "7-9 rlimits, capabilities, no_new_privs"),
    ("landlock", "10 Landlock"),
    ("workload.forked", "11 fork the workload"),
    ("seccomp", "12 seccomp phase 1"),
    ("supervisor.status_eof", "13 execve seen by the supervisor (status pipe EOF)"),
    ("supervisor.child_exited", "interpreter runs and exits; the tree is reaped"),
    ("supervisor.cgroup_removed", "supervisor: remove the cgroup(s)"),
]


def one(binary, args):
    env = dict(os.environ, SANDLOAD_TRACE="1")
    p = subprocess.run([binary, "__bench-exec", "--", *args], env=env, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        sys.exit("bench-exec failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    marks = {}
    for line in p.stderr.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "sandload-trace":
            marks[parts[2]] = int(parts[3])
    return marks


def collect(binary, n, args):
    """Median/min/max milliseconds per step over n traced runs (after one warm-up), and the
    same for the whole `__bench-exec` run: ([(label, median, min, max)], (median, min, max))."""
    one(binary, args)  # warm-up
    steps = {k: [] for k, _ in ORDER}
    totals = []
    for _ in range(n):
        m = one(binary, args)
        prev = None
        for k, _ in ORDER:
            if k not in m:
                continue
            if prev is not None:
                steps[k].append((m[k] - m[prev]) / 1e6)
            prev = k
        totals.append((m["supervisor.cgroup_removed"] - m["supervisor.start"]) / 1e6)
    rows = [(label, statistics.median(steps[k]), min(steps[k]), max(steps[k])) for k, label in ORDER[1:] if steps[k]]
    return rows, (statistics.median(totals), min(totals), max(totals))


def main():
    binary, n = sys.argv[1], int(sys.argv[2])
    rows, total = collect(binary, n, sys.argv[3:] or ["-c", "pass"])
    print("| step | median ms | min ms | max ms |")
    print("|---|---:|---:|---:|")
    for label, m, lo, hi in rows:
        print("| %s | %.3f | %.3f | %.3f |" % (label, m, lo, hi))
    print("| **total, `__bench-exec` entry → exit** | **%.3f** | %.3f | %.3f |" % total)


if __name__ == "__main__":
    main()
