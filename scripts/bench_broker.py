"""Bench-only: broker throughput and supervisor memory of `sandload run` (scripts/bench.sh).

usage: python bench_broker.py SANDLOAD IDENTITY.h5 WORKDIR RUNS SIZE_MIB...

For each size, writes a float32 .npy of shape (1, N) into WORKDIR, then RUNS times runs
`sandload run IDENTITY.h5 -i in.npy -o out.npy --report r.json` and takes from the report:
the phase timings (model loaded -> predict done = input over the broker, predict, output over
the broker, output file flushed and fsync'd) and `sandbox.supervisor_peak_rss` (VmHWM).

The report has no per-direction timings, so the direction split comes from the supervisor's
own I/O counters: /proc/PID/io `rchar`/`wchar` (bytes passed to read-/write-type syscalls),
sampled every ~0.5 ms while the run lasts. Input: the supervisor reads the .npy and writes the
request pipe, so `wchar` climbs by SIZE. The first MiB fills the pipe at once; the supervisor
then waits while the loader allocates (zero-fills) its receive buffer, and the stream starts
when the loader reads: `in_seconds` runs from the last sample at most 1.5 MiB above the level
before the climb to the first sample at the top; `in_with_alloc_seconds` from the last sample
before the first write. Both counters stay flat during predict. Output: from the last sample
before `rchar` moves again (the supervisor reads the response pipe) to the first sample where
`wchar` is SIZE higher (the last byte written to the output file; its fsync comes after). Sampling reads a counter and never stops the process (unlike
strace); it costs the 2-core machine some CPU, so rates here are, if anything, low.

References, same sizes, page cache warm: `cat in.npy | cat > ref.npy` (file -> pipe -> file,
one pipe hop, 64 KiB default pipe), writing the bytes from memory into a file (the page-cache
floor of the output direction) and its fsync, and an in-process numpy copy (memcpy-bound).
Prints one JSON document on stdout.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

MIB = 1 << 20


def make_input(path, size):
    if os.path.exists(path) and os.path.getsize(path) > size:
        return
    n = size // 4
    a = np.lib.format.open_memmap(path, mode="w+", dtype="<f4", shape=(1, n))
    step = 1 << 24
    for i in range(0, n, step):
        a[0, i : i + step] = np.arange(i, min(n, i + step), dtype="<f4")
    a.flush()
    del a
    os.chmod(path, 0o644)


def io_counters(pid):
    """(rchar, wchar) of a process: bytes passed to its read-type and write-type syscalls."""
    try:
        with open("/proc/%d/io" % pid, "rb") as f:
            d = dict(line.split(b":", 1) for line in f.read().split(b"\n") if b":" in line)
        return int(d[b"rchar"]), int(d[b"wchar"])
    except (OSError, KeyError, ValueError):
        return None


def last_at_most(samples, i, limit, start=0):
    """Time of the last sample (from index start) whose counter i is still <= limit, before it
    first exceeds limit."""
    t = None
    for s in samples[start:]:
        if s[i] > limit:
            break
        t = s[0]
    return t


def first_at_least(samples, i, limit, start=0):
    """(time, index) of the first sample (from index start) whose counter i is >= limit."""
    for k in range(start, len(samples)):
        if samples[k][i] >= limit:
            return samples[k][0], k
    return None, None


def split_directions(samples, size):
    """Per-direction times from (t, rchar, wchar) samples; see the module doc."""
    R, W = 1, 2
    w0 = samples[0][W]
    # The first tensor write is the first big jump (the plan, status and frame headers that
    # come before it are a few tens of KiB); `base` is the level just before it.
    i1 = next((k for k, s in enumerate(samples) if s[W] > w0 + (512 << 10)), None)
    if not i1:
        return {}
    base = samples[i1 - 1][W]
    out = {}
    # Input: the first ~1 MiB fills the pipe at once; the stream starts once the loader reads.
    t_stream = last_at_most(samples, W, base + (3 << 19), i1 - 1)
    t_in_end, k = first_at_least(samples, W, base + size, i1)
    if t_stream is None or t_in_end is None:
        return out
    out["in_seconds"] = t_in_end - t_stream
    out["in_with_alloc_seconds"] = t_in_end - samples[i1 - 1][0]
    # Output: starts when the supervisor reads the response pipe (rchar moves again after the
    # flat predict), ends when the last byte is written to the output file.
    r_level, w_level = samples[k][R], samples[k][W]
    t_out = last_at_most(samples, R, r_level + (64 << 10), k)
    t_out_end, _ = first_at_least(samples, W, w_level + size, k)
    if t_out is not None and t_out_end is not None:
        out["out_seconds"] = t_out_end - t_out
    return out


def run_once(binary, model, inp, out, report, size):
    t0 = time.monotonic()
    p = subprocess.Popen(
        [binary, "run", model, "-i", inp, "-o", out, "--report", report, "--no-scan", "--memory", "12G"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    samples = []
    while p.poll() is None:
        c = io_counters(p.pid)
        if c is not None:
            samples.append((time.monotonic() - t0, *c))
        time.sleep(0.0005)
    err = p.stderr.read().decode(errors="replace")
    if p.returncode != 0:
        sys.exit("sandload run failed (%d): %s" % (p.returncode, err[-3000:]))
    rep = json.load(open(report))
    tm = rep["timings"]
    row = {
        "wall": time.monotonic() - t0,
        "predict_phase": tm["predict_done"] - tm["model_loaded"],
        "timings": tm,
        "supervisor_peak_rss": rep["sandbox"]["supervisor_peak_rss"],
        "child_peak_memory": rep["sandbox"]["peak_memory"],
        "samples": len(samples),
    }
    if size >= 16 * MIB and samples:
        row.update(split_directions(samples, size))
    return row


def reference(inp, tmp, size, runs):
    """Floors for the same bytes on this machine: a pipe hop between two `cat`s (file -> pipe
    -> file), writing them from memory into a new file on the output's filesystem (the page
    cache; the output direction ends there), that file's fsync (sandload's .npy sink syncs),
    and an in-process numpy copy (memcpy)."""
    cat, wr, fs, cp = [], [], [], []
    for _ in range(runs):
        t = time.monotonic()
        subprocess.run("cat '%s' | cat > '%s'" % (inp, tmp), shell=True, check=True)
        cat.append(time.monotonic() - t)
        os.unlink(tmp)
    src = np.array(np.load(inp, mmap_mode="r"))  # in memory
    view = memoryview(src).cast("B")
    for _ in range(runs):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        t = time.monotonic()
        off = 0
        while off < len(view):
            off += os.write(fd, view[off : off + MIB])
        wr.append(time.monotonic() - t)
        t = time.monotonic()
        os.fsync(fd)
        fs.append(time.monotonic() - t)
        os.close(fd)
        os.unlink(tmp)
    dst = np.empty_like(src)
    for _ in range(runs):
        t = time.monotonic()
        np.copyto(dst, src)
        cp.append(time.monotonic() - t)
    del src, dst, view
    m = statistics.median
    return {"cat_pipe_seconds": m(cat), "file_write_seconds": m(wr), "fsync_seconds": m(fs), "numpy_copy_seconds": m(cp)}


def measure(binary, model, work, runs, sizes, big_runs=None):
    """One warm-up and `runs` measured runs per size (`big_runs` for sizes >= 1 GiB, whose
    runs take ~10 s each); returns one dict per size."""
    os.makedirs(work, exist_ok=True)
    results = []
    for mib in sizes:
        size = mib * MIB
        n = big_runs if (big_runs and mib >= 1024) else runs
        inp = os.path.join(work, "in_%dM.npy" % mib)
        make_input(inp, size)
        out = os.path.join(work, "out_%dM.npy" % mib)
        rep = os.path.join(work, "report_%dM.json" % mib)
        run_once(binary, model, inp, out, rep, size)  # warm-up: page cache, TF's files
        rows = []
        for _ in range(n):
            rows.append(run_once(binary, model, inp, out, rep, size))
            os.unlink(out)

        def med(k):
            v = [r[k] for r in rows if r.get(k) is not None]
            return statistics.median(v) if v else None

        results.append({
            "mib": mib,
            "bytes": size,
            "runs": n,
            "predict_phase_seconds": med("predict_phase"),
            "in_seconds": med("in_seconds"),
            "in_with_alloc_seconds": med("in_with_alloc_seconds"),
            "out_seconds": med("out_seconds"),
            "supervisor_peak_rss": max(r["supervisor_peak_rss"] for r in rows),
            "child_peak_memory": med("child_peak_memory"),
            "wall_seconds": med("wall"),
            "timings_last": rows[-1]["timings"],
            "reference": reference(inp, os.path.join(work, "ref_%dM.npy" % mib), size, max(3, n)),
        })
    return results


def main():
    binary, model, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    sizes = [int(s) for s in sys.argv[5:]]
    json.dump({"sizes": measure(binary, model, work, runs, sizes)}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
