#!/usr/bin/env bash
# The main job, from a fresh clone: build sandload, set up TensorFlow 2.12, make a trojaned
# Keras model, load it once with plain Keras (the attack works) and once with sandload (the
# attack is contained and the prediction is still right). Everything stays on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "1/4 building sandload and the Python stack (TensorFlow 2.12, Keras 2.12)"
cargo build --release --locked --quiet
bash scripts/setup-python.sh
py=.venv/bin/python
demo=target/demo
rm -rf "$demo" && mkdir -p "$demo/models" "$demo/home/.ssh"
echo "AKIA-demo-ssh-key-$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$demo/home/.ssh/id_rsa"
echo "db password: hunter2-$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$demo/models/credentials.txt"
chmod -R o+rX "$demo"

# A loopback listener standing in for the attacker's server.
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$py - "$port" "$demo/loot.txt" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4); s.settimeout(120)
try:
    while True:
        c, _ = s.accept()
        open(sys.argv[2], "ab").write(c.recv(65536) + b"\n")
except Exception:
    pass
PY
listener=$!
trap 'kill $listener 2>/dev/null || true' EXIT
sleep 0.3

say "2/4 making a trojaned model: a Lambda layer computing x*2+1 that also steals and phones home"
$py scripts/make_trojan.py "$demo/models/trojan.h5" "$port" "$demo/models/PWNED" 2>/dev/null
echo '[[1, 2, 3, 4]]' > "$demo/input.json"
chmod -R o+rX "$demo"

say "3/4 without sandload: plain keras.models.load_model() on the host"
HOME="$PWD/$demo/home" DEMO_SECRET_TOKEN=ghp_demo_secret \
  $py -c 'import sys,tensorflow as tf; tf.keras.models.load_model(sys.argv[1], compile=False)' "$demo/models/trojan.h5" 2>/dev/null
sleep 0.5
echo "  the attacker's listener received: $(head -c 300 "$demo/loot.txt" 2>/dev/null || echo nothing)"
[ -f "$demo/models/PWNED" ] && echo "  and a command ran on the host: $demo/models/PWNED = $(cat "$demo/models/PWNED")"
rm -f "$demo/loot.txt" "$demo/models/PWNED"

say "4/4 with sandload: the same model, sandboxed"
HOME="$PWD/$demo/home" DEMO_SECRET_TOKEN=ghp_demo_secret \
  ./target/release/sandload run "$demo/models/trojan.h5" -i "$demo/input.json" --report "$demo/report.json"
sleep 0.5
echo
if [ -s "$demo/loot.txt" ]; then echo "  LISTENER GOT DATA: $(cat "$demo/loot.txt")"; exit 1; fi
if [ -e "$demo/models/PWNED" ]; then echo "  A COMMAND RAN ON THE HOST"; exit 1; fi
echo "  the attacker's listener received nothing; no command ran on the host;"
echo "  the prediction is x*2+1 = [3, 5, 7, 9]. Full report: $demo/report.json"
