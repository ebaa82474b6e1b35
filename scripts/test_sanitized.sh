#!/usr/bin/env bash
# The hardening stage of scripts/test.sh (docs/reliability.md), after the
# normal build and ctest:
#   1. one clang build with -DHAQ_FUZZ=ON (-O1, ASan+UBSan, libFuzzer coverage)
#      of everything: haq, the unit and e2e tests and the eight fuzz targets;
#   2. scripts/fuzz.sh SECONDS: every fuzz target for SECONDS (default 60),
#      two at a time; fails if a target crashed, leaked, hung or ran out of memory;
#   3. ctest in that build: the unit and e2e tests under ASan+UBSan (haq runs
#      instrumented inside the e2e tests too). oneDNN is not instrumented.
# The fuzz targets and the tests share the one build, so the stage compiles
# the project only once more.
#   scripts/test_sanitized.sh [SECONDS]
# Environment: HAQ_FUZZ_BUILD_DIR (default build-fuzz), HAQ_JOBS (default 2),
# and what scripts/fuzz.sh reads. Prints the time of each step.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
build="${HAQ_FUZZ_BUILD_DIR:-$root/build-fuzz}"
export HAQ_FUZZ_BUILD_DIR="$build"

command -v clang++ >/dev/null || { echo "test_sanitized.sh: clang++ not found (scripts/setup.sh installs it)" >&2; exit 2; }
t0=$(date +%s)
mkdir -p "$build"
# The same configuration as scripts/fuzz.sh, so that it finds the build done.
cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DHAQ_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" >/dev/null
cmake --build "$build" -j"${HAQ_JOBS:-2}" >"$build/sanitized-build.log" 2>&1 ||
  { tail -40 "$build/sanitized-build.log" >&2; echo "test_sanitized.sh: build failed" >&2; exit 2; }
t1=$(date +%s)

failed=()
# A fixed libFuzzer seed by default, so that CI's fuzzing replays the same
# mutations (checked here for 2x as long) and a red CI is a real regression;
# new ground is covered by longer runs: HAQ_FUZZ_SEED=0 scripts/fuzz.sh 600.
export HAQ_FUZZ_SEED="${HAQ_FUZZ_SEED:-1}"
echo "test_sanitized.sh: fuzzing each target for ${seconds} s (seed $HAQ_FUZZ_SEED)"
# Its report is kept and printed again at the very end when it failed, so
# that a CI log showing only its tail still says which target and input.
fuzz_report="$build/fuzz-report.txt"
"$root/scripts/fuzz.sh" "$seconds" 2>&1 | tee "$fuzz_report" || failed+=("fuzz")  # pipefail: fuzz.sh's status
t2=$(date +%s)

# ASan+UBSan for the tests (the e2e tests pass the environment on to haq):
#  - every UB is fatal (HAQ_SANITIZE builds with -fno-sanitize-recover);
#  - leaks fail the test, as in the fuzz targets;
#  - an allocation above 4 GiB is a report, not a silent success: no input
#    the tests use needs that much, so it can only be a size from a bad header.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0:max_allocation_size_mb=4096:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
echo "test_sanitized.sh: unit and e2e tests under ASan+UBSan"
(cd "$build" && ctest --output-on-failure -j"${HAQ_JOBS:-2}" --timeout 1800) || failed+=("sanitized ctest")
t3=$(date +%s)

echo "test_sanitized.sh: build $((t1 - t0)) s, fuzz $((t2 - t1)) s, sanitized ctest $((t3 - t2)) s, total $((t3 - t0)) s"
if ((${#failed[@]})); then
  if [[ " ${failed[*]} " == *" fuzz "* ]]; then
    echo "test_sanitized.sh: the fuzz report again (full logs in $build/fuzz-logs/):" >&2
    cat "$fuzz_report" >&2
  fi
  echo "test_sanitized.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
