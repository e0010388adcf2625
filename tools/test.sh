#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs, then `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/setup.sh
cargo test --workspace --locked "$@"
