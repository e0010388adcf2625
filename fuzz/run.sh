#!/usr/bin/env bash
# Runs fuzz targets one after the other, one libFuzzer worker at a time, and appends each
# run's statistics to fuzz/runs.log (git-ignored scratch; the numbers go in fuzz/README.md).
#
#   bash fuzz/run.sh TARGET:SECONDS [TARGET:SECONDS ...]
#   FUZZ_SANITIZER=none bash fuzz/run.sh ...   # without AddressSanitizer: 10-60x the rate
#   FUZZ_TRACE_COMPARES=0 ...                  # edge coverage only (no comparison tracing),
#                                              # built in target-ntc/; ~4x the rate of `tokenize`
#   FUZZ_MAX_LEN=N ...                         # override the per-target input size limit
#
# Each target runs until 5,000,000 executions or SECONDS, whichever comes first, starting
# from fuzz/corpus/TARGET (seed it with `python3 tools/fuzz_seeds.py`).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export TMPDIR="${TMPDIR:-/dev/shm}"   # the targets write scratch files; tmpfs keeps fsync cheap
for spec in "$@"; do
  target="${spec%%:*}"; seconds="${spec##*:}"
  case "$target" in
    preprocess) max_len=65536 ;;
    *) max_len=16384 ;;
  esac
  max_len="${FUZZ_MAX_LEN:-$max_len}"
  build=()
  if [ "${FUZZ_TRACE_COMPARES:-1}" = 0 ]; then build=(--no-trace-compares --target-dir target-ntc); fi
  mkdir -p "corpus/$target" "artifacts/$target"
  args=(-runs=5000000 -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10
        -max_len="$max_len" -print_final_stats=1)
  sanitizer="${FUZZ_SANITIZER:-address}"
  echo "== $(date -u +%FT%TZ) cargo +nightly fuzz run -s $sanitizer -O ${build[*]} $target corpus/$target -- ${args[*]}" | tee -a runs.log
  start=$(date +%s)
  cargo +nightly fuzz run -s "$sanitizer" -O "${build[@]}" "$target" "corpus/$target" -- -artifact_prefix="artifacts/$target/" "${args[@]}" \
    > "logs-$target.txt" 2>&1
  rc=$?
  end=$(date +%s)
  units=$(grep -o 'stat::number_of_executed_units: [0-9]*' "logs-$target.txt" | tail -1 | grep -o '[0-9]*$')
  echo "$target rc=$rc executions=${units:-?} seconds=$((end - start)) rate=$(( ${units:-0} / ((end - start) > 0 ? (end - start) : 1) ))/s" | tee -a runs.log
  grep -E 'ERROR|panicked|SUMMARY|Test unit written' "logs-$target.txt" | head -5 | tee -a runs.log
done
