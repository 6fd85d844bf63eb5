#!/usr/bin/env bash
# Benchmarks `sandload serve` against an unsandboxed in-process Python HTTP server making the
# same Keras call: requests/s and p50/p99 at 1, 4 and 16 clients on a small model, and a
# 64 MiB binary-tensor round trip. Writes docs/BENCHMARKS-SERVE.md. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${BENCH_SECONDS:-10}
cargo build --release --locked --quiet
bash scripts/setup-python.sh
py=$(readlink -f .venv/bin/python)
venvpy=.venv/bin/python
out=target/bench-serve && rm -rf "$out" && mkdir -p "$out"
$venvpy tests/fixtures/gen_models.py "$out/models" >/dev/null 2>&1
chmod -R o+rX "$out"
free_port() { $venvpy -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sp=$(free_port); bp=$(free_port)
./target/release/sandload serve -m dense="$out/models/dense.h5" -m identity="$out/models/identity.h5" \
  --listen 127.0.0.1:$sp --max-body 512M --request-timeout 120 2> "$out/serve.log" &
spid=$!
$venvpy scripts/bench_bare_server.py $bp dense="$out/models/dense.h5" identity="$out/models/identity.h5" > "$out/bare.log" 2>&1 &
bpid=$!
trap 'kill $spid $bpid 2>/dev/null || true' EXIT
for i in $(seq 1 600); do
  grep -q event=ready "$out/serve.log" 2>/dev/null && grep -q ready "$out/bare.log" 2>/dev/null && break
  sleep 0.2
done
client() { $venvpy scripts/bench_serve_client.py "$@"; }
# Warm both (first predict traces the graph).
client 127.0.0.1:$sp dense 1 2 >/dev/null; client 127.0.0.1:$bp dense 1 2 >/dev/null
{
  echo "# serve benchmarks"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(uname -r); model: dense.h5 (Dense 4→2), input (1,4) float32, JSON."
  echo "Each row: the same load generator (\`scripts/bench_serve_client.py\`, keep-alive clients, ${secs} s) against"
  echo "\`sandload serve\` (1 sandboxed worker) and an unsandboxed in-process Python server making the same"
  echo "\`model.predict\` call under one lock (\`scripts/bench_bare_server.py\`), alternating in one run."
  echo
  echo "| clients | sandload rps | bare rps | ratio | sandload p50 ms | bare p50 ms | p50 overhead ms | sandload p99 ms | bare p99 ms |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for c in 1 4 16; do
    s=$(client 127.0.0.1:$sp dense $c $secs); b=$(client 127.0.0.1:$bp dense $c $secs)
    $venvpy - "$c" "$s" "$b" <<'PY'
import json, sys
c, s, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print("| %s | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (c, s["rps"], b["rps"], s["rps"] / b["rps"],
      s["p50_ms"], b["p50_ms"], s["p50_ms"] - b["p50_ms"], s["p99_ms"], b["p99_ms"]))
PY
  done
  echo
  echo "64 MiB float32 tensor, binary-tensor extension, in and out (identity model), 1 client:"
  echo
  s=$(client 127.0.0.1:$sp identity 1 $secs binary64m); b=$(client 127.0.0.1:$bp identity 1 $secs binary64m)
  $venvpy - "$s" "$b" <<'PY'
import json, sys
s, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("| server | round trips | GB/s (request + response bytes) | p50 ms |")
print("|---|---|---|---|")
print("| sandload serve | %d | %.2f | %.0f |" % (s["requests"], s["gbps"], s["p50_ms"]))
print("| bare Python | %d | %.2f | %.0f |" % (b["requests"], b["gbps"], b["p50_ms"]))
PY
  echo
  echo "Command: \`scripts/bench-serve.sh\` (BENCH_SECONDS=$secs)."
} | tee docs/BENCHMARKS-SERVE.md
