#!/usr/bin/env bash
# Compare `sandload scan` with modelscan (PyPI) on the scan fixture corpus:
# findings side by side and wall time per file. Prints a Markdown table
# (paste it into docs/SCAN.md).
#
# Usage: scripts/bench-scan.sh [SANDLOAD_BIN] [OUTDIR]
#   SANDLOAD_BIN  defaults to target/release/sandload (built if missing)
#   OUTDIR        fixture dir, default target/scan-bench
# modelscan lives in its own venv (.venv-modelscan, git-ignored), installed
# as its users install it: `pip install 'modelscan[tensorflow,h5py]'`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/target/release/sandload}
out=${2:-$here/target/scan-bench}
mvenv="$here/.venv-modelscan"
export TF_CPP_MIN_LOG_LEVEL=2

if [ ! -x "$bin" ]; then
  (cd "$here" && cargo build --release)
fi
"$here/scripts/setup-python.sh"
if [ ! -x "$mvenv/bin/modelscan" ]; then
  base=$(readlink -f "$here/.venv/bin/python")
  "$base" -m venv "$mvenv"
  "$mvenv/bin/pip" install -q --disable-pip-version-check 'modelscan[tensorflow,h5py]'
fi
command -v hyperfine >/dev/null || { apt-get install -y hyperfine >/dev/null 2>&1 || true; }

rm -rf "$out"
"$here/.venv/bin/python" "$here/tests/fixtures/scan_fixtures.py" "$out" 2>/dev/null

# Mean wall time of a command, in ms: hyperfine when present, else 3 runs.
time_ms() {
  if command -v hyperfine >/dev/null; then
    # hyperfine takes one string per command; quote each word into it.
    local cmd; cmd=$(printf '%q ' "${@:2}")
    hyperfine -N -i --warmup 1 --runs "$1" --export-json /tmp/bench-scan.$$.json "$cmd" >/dev/null 2>&1
    python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["mean"]*1000))' /tmp/bench-scan.$$.json
  else
    local s e; s=$(date +%s%N); for _ in 1 2 3; do "${@:2}" >/dev/null 2>&1 || true; done; e=$(date +%s%N)
    echo $(( (e - s) / 3000000 ))
  fi
}

sandload_summary() {  # worst severity + kinds, and exit code
  local code=0
  "$bin" scan --format json "$1" >/tmp/bench-scan.$$.out 2>/dev/null || code=$?
  python3 - "$code" /tmp/bench-scan.$$.out <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
r = d["reports"][0] if d["reports"] else {"findings": [], "errors": []}
kinds = sorted({f["kind"] for f in r["findings"]})
worst = d["summary"]["highest"] or "none"
err = " +error" if r["errors"] else ""
print(f"{worst}: {', '.join(kinds) or '-'}{err} (exit {sys.argv[1]})")
PY
}

modelscan_summary() {
  local code=0
  "$mvenv/bin/modelscan" -p "$1" >/tmp/bench-scan.$$.out 2>&1 || code=$?
  python3 - "$code" /tmp/bench-scan.$$.out <<'PY'
import re, sys
t = open(sys.argv[2]).read()
sev = re.findall(r"Severity: (\w+)", t)
ops = sorted(set(re.findall(r"unsafe operator '([^']+)'", t)))
err = " +error" if "--- Errors ---" in t else ""
skipped = " +skipped" if "Total skipped" in t else ""
worst = max(sev, key=["LOW", "MEDIUM", "HIGH", "CRITICAL"].index).lower() if sev else "none"
print(f"{worst}: {', '.join(ops) or '-'}{err}{skipped} (exit {sys.argv[1]})")
PY
}

echo "| fixture | expected | sandload scan | modelscan $("$mvenv/bin/pip" show modelscan 2>/dev/null | sed -n 's/^Version: //p') | sandload ms | modelscan ms |"
echo "|---|---|---|---|---|---|"
python3 -c 'import json,sys; [print(k, v["severity"] or "none", v["exit"]) for k,v in sorted(json.load(open(sys.argv[1])).items())]' "$out/MANIFEST.json" |
while read -r name sev code; do
  f="$out/$name"
  s=$(sandload_summary "$f")
  m=$(modelscan_summary "$f")
  ts=$(time_ms 20 "$bin" scan "$f")
  tm=$(time_ms 3 "$mvenv/bin/modelscan" -p "$f")
  echo "| $name | $sev (exit $code) | $s | $m | $ts | $tm |"
done
rm -f /tmp/bench-scan.$$.json /tmp/bench-scan.$$.out
