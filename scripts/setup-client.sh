#!/usr/bin/env bash
# A small venv with a real Triton HTTP client (tritonclient[http]) for the serve tests.
# Idempotent; kept apart from .venv so the sandboxed stack stays exactly as pinned.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv-client"
req="tritonclient[http]==2.51.0 numpy==1.26.4"
[ -x "$venv/bin/python" ] && [ "$(cat "$venv/.sandload-requirements" 2>/dev/null)" = "$req" ] && exit 0
base=$(readlink -f "$here/.venv/bin/python" 2>/dev/null || true)
[ -x "$base" ] || base=$(command -v python3)
rm -rf "$venv"
"$base" -m venv "$venv"
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --disable-pip-version-check -q $req
echo "$req" > "$venv/.sandload-requirements"
