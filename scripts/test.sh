#!/usr/bin/env bash
# Sets everything up on a fresh clone and runs the whole test suite.
#   SANDLOAD_REQUIRE_SANDBOX=1  turn every "this host cannot sandbox" skip into a failure (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
bash scripts/setup-python.sh
bash scripts/setup-client.sh
bash scripts/setup-keras3.sh
cargo build --locked --quiet
echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --locked --quiet --all-targets -- -D warnings
echo "== tests (unit, property, integration with real sandboxes and TensorFlow 2.12)"
# Two at a time: each sandboxed TensorFlow start takes a core for ~2 s.
cargo test --locked -- --test-threads="${SANDLOAD_TEST_THREADS:-2}"
