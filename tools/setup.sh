#!/usr/bin/env bash
# Installs what building and running clip-rs needs on a fresh Debian machine, then prints
# the ORT_DYLIB_PATH to use. Idempotent: a second run does nothing.
#
#   * Debian packages for the vendored libjpeg-turbo build (cmake, nasm).
#   * ONNX Runtime's shared library, taken from PyPI's `onnxruntime` wheel (the only place
#     it can come from on machines without internet beyond package registries) and kept in
#     ./.ort/ (git-ignored).
#
# Use:  source tools/setup.sh     (exports ORT_DYLIB_PATH)
#  or:  bash tools/setup.sh       (just installs)
set -euo pipefail

ORT_VERSION="${ORT_VERSION:-1.32.0}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ort_dir="$repo_root/.ort"
ort_lib="$ort_dir/libonnxruntime.so.$ORT_VERSION"

need_apt=()
for tool in cmake nasm; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
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
