#!/usr/bin/env bash
# Runs a haq sweep as N shards with GNU parallel on this machine, then merges.
#   scripts/sweep_parallel.sh SWEEP.json OUT N
# Each shard is an independent `haq sweep --shard K/N` process; the shards
# write disjoint job folders under OUT, and a rerun skips complete jobs.
# Results: OUT/merged/{merged.csv,merged.md,cross.csv}.
# HAQ (default: haq on PATH, else build/apps/haq/haq) selects the binary.
set -euo pipefail
if [[ $# -ne 3 ]]; then
  echo "usage: $0 SWEEP.json OUT N" >&2
  exit 2
fi
sweep=$1 out=$2 n=$3
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: N must be a positive integer, got '$n'" >&2
  exit 2
fi
if ! command -v parallel >/dev/null; then
  echo "$0: GNU parallel is missing (Debian: apt-get install parallel)" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
haq=${HAQ:-$(command -v haq || echo "$here/build/apps/haq/haq")}
# Each shard's search already uses the cores it is given; keep N <= cores.
# --halt now,fail=1: a failing shard stops the others (rerun to resume).
parallel --will-cite --halt now,fail=1 --line-buffer \
  "$haq" sweep "$sweep" --out "$out" --quiet --shard {}/"$n" ::: $(seq 1 "$n")
"$haq" merge "$out" --out "$out/merged"
