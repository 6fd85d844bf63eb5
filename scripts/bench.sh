#!/usr/bin/env bash
# Benchmarks (issue 5), one command from a fresh clone: builds sandload (release), sets up the
# TensorFlow 2.12 venv, generates the test models into target/bench, then measures
#   1. spawn overhead: bare `python -c pass`, `unshare -rn`, bwrap, `sandload __bench-exec`
#   2. end to end: `sandload run` on a Dense model vs the same loader bare and inside bwrap
#   3. phase timings from the run report
#   4. broker throughput (identity model, 1 MiB / 64 MiB / 1 GiB float32, each way)
#   5. the supervisor's peak RSS per size
# and writes docs/BENCHMARKS.md (machine, exact commands, medians, ratios). ~8 minutes.
#
#   BENCH_QUICK=1   a few runs of each, to check the harness (~2 minutes; numbers are rough)
#
# Needs root for the full sandbox (cgroups, the unprivileged sandbox uid) as `sandload run`
# does; installs hyperfine and bubblewrap with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/target/bench
say() { printf 'bench: %s\n' "$*" >&2; }

for tool in hyperfine:hyperfine bwrap:bubblewrap; do
  if ! command -v "${tool%%:*}" >/dev/null; then
    say "installing ${tool#*:}"
    apt-get install -y -q "${tool#*:}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${tool#*:}" >/dev/null; }
  fi
done

say "building sandload (release)"
cargo build --release --locked --quiet
bash scripts/setup-python.sh
# The venv by its real path: a symlinked .venv would name a path that does not exist inside
# the sandbox, and the bare runs must execute the very same interpreter file.
venv=$(cd .venv && pwd -P)
python=$venv/bin/python
export SANDLOAD_PYTHON=$python
sandload=$root/target/release/sandload

say "generating models into $work"
rm -rf "$work" && mkdir -p "$work"
TF_CPP_MIN_LOG_LEVEL=2 "$python" tests/fixtures/gen_models.py "$work" >/dev/null 2>&1
"$python" -c 'import numpy as np, sys; np.save(sys.argv[1], np.array([[1.0, 2.0, 3.0, 4.0]], dtype="float32"))' "$work/x1.npy"
# The sandbox reads models as uid 65534.
chmod -R o+rX "$work"

quick=()
[ "${BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
"$python" scripts/bench_run.py --sandload "$sandload" --python "$python" --work "$work" \
  --doc docs/BENCHMARKS.md "${quick[@]}"
say "done: docs/BENCHMARKS.md (raw results: $work/results.json)"
