#!/usr/bin/env bash
# Creates .venv-keras3 (Keras 3 + JAX) for the tests that check the loader on Keras 3.
# Idempotent, like setup-python.sh. jax 0.12 needs Python >= 3.12.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv-keras3"
req="$here/scripts/requirements-keras3.txt"
stamp="$venv/.sandload-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then exit 0; fi
base=""
for p in /root/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do
  [ -x "$p" ] && { base=$p; break; }
done
[ -n "$base" ] || { echo "setup-keras3: no Python 3.12 found (needed by jax 0.12)" >&2; exit 1; }
rm -rf "$venv"
"$base" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
cp "$req" "$stamp"
