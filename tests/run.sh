#!/usr/bin/env bash
# The whole test suite: installs what is missing (.ci/setup), builds the stepwise binary,
# then runs every test of the workspace against real SQLite files, real models, real
# servers and real Debian engines.
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/setup
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stepwise/target}"
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
