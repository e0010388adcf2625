#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs, then `cargo test`
# with the optional `chroma` and `hub` features.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/setup.sh --with-chroma
# The optional integrations are tested too: the Chroma round trip against a real server
# (required here: a missing server fails instead of skipping) and the Hub loader offline.
# `clip-rs/feature` names the root package's features explicitly under --workspace.
export CLIP_RS_REQUIRE_CHROMA=1
cargo test --workspace --locked --features clip-rs/chroma,clip-rs/hub "$@"
