#!/usr/bin/env bash
# Create .venv/ in the repo root with the pinned TensorFlow 2.12 stack.
# Idempotent: a venv whose requirements stamp matches is left alone (< 1 s).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"
req="$here/scripts/requirements-tf212.txt"

# The pyenv `python3` shim is slow and resolves per directory; use the real
# interpreter by absolute path so the venv's pyvenv.cfg names a fixed prefix.
pick_python() {
  if [ -n "${SANDLOAD_BASE_PYTHON:-}" ]; then echo "$SANDLOAD_BASE_PYTHON"; return; fi
  for p in /root/.pyenv/versions/3.11*/bin/python3.11 /usr/local/bin/python3.11 /usr/bin/python3.11; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  command -v python3 >/dev/null && python3 -c 'import sys; print(sys.executable)' && return
  echo "setup-python: no Python 3.11 found; set SANDLOAD_BASE_PYTHON" >&2; exit 1
}

stamp="$venv/.sandload-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
base=$(pick_python)
echo "setup-python: creating $venv with $base" >&2
rm -rf "$venv"
"$base" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip wheel
"$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
"$venv/bin/python" -c 'import tensorflow as tf, keras; print("setup-python: tf", tf.__version__, "keras", keras.__version__)' 2>/dev/null
cp "$req" "$stamp"
