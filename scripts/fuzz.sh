#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for SECONDS.
#   scripts/fuzz.sh SECONDS [TARGET...]     targets: onnx profile policy idx npy checkpoint
#                                           config sweep rounding_cache (default: all)
# Environment: HAQ_FUZZ_BUILD_DIR (default build-fuzz), HAQ_FUZZ_PARALLEL (targets
# run at once, default 2), HAQ_FUZZ_RSS_MB (memory limit per target, default 2048),
# HAQ_FUZZ_TIMEOUT_S (limit for one input, default 10), HAQ_FUZZ_SEED (libFuzzer's
# -seed: the same seed replays the same mutations; unset or 0: a new one each run).
# Prints executions, exec/s, seconds and crashes per target. Exits non-zero if
# any target crashed, leaked, hit a sanitizer, a timeout or the memory limit;
# the input is saved in BUILD/fuzz-artifacts/TARGET/ (and printed in base64 if
# small) -- copy it to tests/fuzz/regressions/TARGET/ once fixed.
# The corpus grows in BUILD/fuzz-corpus/TARGET/ across runs; seeds are
# tests/fuzz/corpus/TARGET/ plus the repository's real files.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
all_targets=(onnx profile policy idx npy checkpoint config sweep rounding_cache)
if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh SECONDS [TARGET...]   (targets: ${all_targets[*]})" >&2
  exit 2
fi
seconds="$1"
shift
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (${all_targets[*]})" >&2; exit 2; }
done
build="${HAQ_FUZZ_BUILD_DIR:-$root/build-fuzz}"
parallel="${HAQ_FUZZ_PARALLEL:-2}"
rss_mb="${HAQ_FUZZ_RSS_MB:-2048}"
timeout_s="${HAQ_FUZZ_TIMEOUT_S:-10}"

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (scripts/setup.sh installs it)" >&2; exit 2; }
cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DHAQ_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" >/dev/null
cmake --build "$build" -j"${HAQ_JOBS:-2}" --target "${targets[@]/#/fuzz_}" >"$build/fuzz-build.log" 2>&1 ||
  { tail -40 "$build/fuzz-build.log" >&2; echo "fuzz.sh: build failed" >&2; exit 2; }

# Seeds: the hand-made ones plus real files of the repository.
seed_files() {
  case "$1" in
    onnx) ls "$root"/models/*.onnx "$root"/tests/data/model/*.onnx 2>/dev/null || true ;;
    profile) ls "$root"/hardware-profiles/*.json 2>/dev/null || true ;;
    policy) ls "$root"/configs/policies/*.json 2>/dev/null || true ;;
    config) ls "$root"/configs/*.json 2>/dev/null | grep -v /sweep || true ;;
    sweep) ls "$root"/configs/sweep*.json 2>/dev/null || true ;;
  esac
}

run_one() {
  local t="$1" seeds="$build/fuzz-seeds/$1" corpus="$build/fuzz-corpus/$1"
  local artifacts="$build/fuzz-artifacts/$1" log="$build/fuzz-logs/$1.log"
  rm -rf "$seeds" "$artifacts"
  mkdir -p "$seeds" "$corpus" "$artifacts" "$(dirname "$log")"
  cp "$root"/tests/fuzz/corpus/"$t"/* "$seeds"/
  local f
  for f in $(seed_files "$t"); do cp "$f" "$seeds/"; done
  local start end rc=0
  start=$(date +%s)
  ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0:${ASAN_OPTIONS:-}" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
    "$build/tests/fuzz/fuzz_$t" "$corpus" "$seeds" -max_total_time="$seconds" \
    -timeout="$timeout_s" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
    -artifact_prefix="$artifacts/" -print_final_stats=1 -seed="${HAQ_FUZZ_SEED:-0}" >"$log" 2>&1 || rc=$?
  end=$(date +%s)
  echo "$rc $((end - start))" >"$log.result"
}

# Two (HAQ_FUZZ_PARALLEL) at a time.
pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
done
wait || true

failed=0
printf '%-8s %12s %8s %8s %8s\n' target executions exec/s seconds crashes
for t in "${targets[@]}"; do
  log="$build/fuzz-logs/$t.log"
  read -r rc secs <"$log.result"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(find "$build/fuzz-artifacts/$t" -type f ! -name 'slow-unit-*' | wc -l)
  printf '%-8s %12s %8s %8s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "$secs" "$crashes"
  if [[ "$rc" != 0 || "$crashes" != 0 ]]; then
    failed=1
    echo "fuzz.sh: $t FAILED (exit $rc); log $log" >&2
    grep -E 'ERROR: |SUMMARY: |runtime error|escaped exception|Test unit written' "$log" | head -20 >&2 || true
    for f in $(find "$build/fuzz-artifacts/$t" -type f ! -name 'slow-unit-*'); do
      echo "fuzz.sh: input saved as $f" >&2
      if (($(stat -c %s "$f") <= 4096)); then echo "  base64: $(base64 -w0 "$f")" >&2; fi
    done
  fi
done
exit "$failed"
