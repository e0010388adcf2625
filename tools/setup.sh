#!/usr/bin/env bash
# Installs what building and running clip-rs needs on a fresh Debian machine, then prints
# the ORT_DYLIB_PATH to use. Idempotent: a second run does nothing.
#
#   * Debian packages for the vendored libjpeg-turbo build (cmake, nasm).
#   * ONNX Runtime's shared library, taken from PyPI's `onnxruntime` wheel (the only place
#     it can come from on machines without internet beyond package registries) and kept in
#     ./.ort/ (git-ignored).
#   * A Chroma server for the `chroma` feature's integration tests: PyPI's chromadb, pinned,
#     in the virtual environment ./.venv-tools/ (git-ignored; about 2 minutes the first time,
#     instant after). Skipped with --without-chroma (tools/demo.sh does not need it).
#
# Use:  source tools/setup.sh --with-chroma   (exports ORT_DYLIB_PATH and CHROMA_BIN; a sourced
#                                             script sees its caller's arguments unless given some)
#  or:  bash tools/setup.sh                   (just installs)
# Sourced, it installs in a child bash (whose `set -e` cannot close the calling shell) and
# only exports here: the caller's shell options are left as they were.

with_chroma=1
for arg in "$@"; do
  case "$arg" in
    --with-chroma) with_chroma=1 ;;
    --without-chroma) with_chroma=0 ;;
    *) echo "setup: unknown option $arg (known: --with-chroma, --without-chroma)" >&2; return 2 2>/dev/null || exit 2 ;;
  esac
done
CHROMADB_VERSION="${CHROMADB_VERSION:-1.5.9}"

ORT_VERSION="${ORT_VERSION:-1.32.0}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ort_dir="$repo_root/.ort"
ort_lib="$ort_dir/libonnxruntime.so.$ORT_VERSION"

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  bash "${BASH_SOURCE[0]}" "$@" || return $?
  export ORT_DYLIB_PATH="$ort_lib"
  if [ "$with_chroma" = 1 ]; then export CHROMA_BIN="$repo_root/.venv-tools/bin/chroma"; fi
  return 0
fi
set -euo pipefail

need_apt=()
for tool in cmake nasm; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
# Debian's python3 comes without pip (python3-pip), which fetches the onnxruntime wheel.
if [ ! -f "$ort_lib" ] && ! python3 -m pip --version >/dev/null 2>&1; then
  command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
  need_apt+=(python3-pip)
fi
# Debian's python3 has no `venv` (ensurepip) until python3-venv is installed.
if [ "$with_chroma" = 1 ] && [ ! -x "$repo_root/.venv-tools/bin/python" ] \
    && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} (apt)" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >&2
fi

if [ ! -f "$ort_lib" ]; then
  echo "setup: fetching ONNX Runtime $ORT_VERSION from PyPI's onnxruntime wheel" >&2
  mkdir -p "$ort_dir/wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    "onnxruntime==$ORT_VERSION" -d "$ort_dir/wheel" >&2
  python3 - "$ort_dir" "$ORT_VERSION" <<'PY'
import glob, sys, zipfile
out, version = sys.argv[1], sys.argv[2]
wheel = sorted(glob.glob(f"{out}/wheel/onnxruntime-{version}-*.whl"))[-1]
member = f"onnxruntime/capi/libonnxruntime.so.{version}"
with zipfile.ZipFile(wheel) as z, open(f"{out}/libonnxruntime.so.{version}", "wb") as f:
    f.write(z.read(member))
PY
  rm -rf "$ort_dir/wheel"
fi

export ORT_DYLIB_PATH="$ort_lib"
echo "setup: ORT_DYLIB_PATH=$ORT_DYLIB_PATH" >&2

if [ "$with_chroma" = 1 ]; then
  venv="$repo_root/.venv-tools"
  if ! "$venv/bin/python" - "$CHROMADB_VERSION" >/dev/null 2>&1 <<'PY'
import importlib.metadata, sys
sys.exit(importlib.metadata.version("chromadb") != sys.argv[1])
PY
  then
    echo "setup: installing chromadb $CHROMADB_VERSION (PyPI) into .venv-tools/" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "chromadb==$CHROMADB_VERSION" >&2
  fi
  export CHROMA_BIN="$venv/bin/chroma"
  echo "setup: CHROMA_BIN=$CHROMA_BIN" >&2
fi
