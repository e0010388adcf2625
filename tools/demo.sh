#!/usr/bin/env bash
# The main job end to end on a fresh machine: installs what it needs, builds the `clip`
# tool, and runs its demo (embeddings, a similarity matrix and zero-shot guesses over the
# bundled photos and texts, on the bundled tiny model).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/setup.sh --without-chroma
cargo run --release --locked --quiet -- demo "$@"
