#!/usr/bin/env bash
# Prints the time to build the full cost table (every layer x every supported
# (w_bits, a_bits)) of the torchvision ResNet-50 export on every shipped
# hardware profile. Target (issue 4): under 1 s in total on the dev machine.
# Usage: bench/hw_cost_table.sh [path/to/haq] [model.onnx]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
haq="${1:-${HAQ_BUILD_DIR:-$root/build}/apps/haq/haq}"
model="${2:-$root/models/generated/resnet50.onnx}"
if [[ ! -f "$model" ]]; then
  echo "hw_cost_table: $model missing; exporting it with scripts/export_torchvision.py" >&2
  /usr/bin/python3 "$root/scripts/export_torchvision.py" >&2
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
total_ms=0
printf '%-16s %-12s %8s %10s %12s\n' profile architecture layers bit_pairs table_ms
for profile in "$root"/hardware-profiles/*.json; do
  arch="$(sed -n 's/.*"architecture": *"\([^"]*\)".*/\1/p' "$profile")"
  # A table profile only covers the model it was measured on.
  [[ "$arch" == "table" ]] && continue
  line="$("$haq" simulate "$model" --hw "$profile" --table-out "$tmp/costs.csv" 2>&1 >/dev/null | grep 'cost table:')"
  # "haq: cost table: 54 layers x 64 bit pairs built in 16.0 ms, written to ..."
  layers="$(sed -n 's/.*table: \([0-9]*\) layers.*/\1/p' <<<"$line")"
  pairs="$(sed -n 's/.* x \([0-9]*\) bit pairs.*/\1/p' <<<"$line")"
  ms="$(sed -n 's/.*built in \([0-9.]*\) ms.*/\1/p' <<<"$line")"
  printf '%-16s %-12s %8s %10s %12s\n' "$(basename "$profile" .json)" "$arch" "$layers" "$pairs" "$ms"
  total_ms="$(awk -v a="$total_ms" -v b="$ms" 'BEGIN { printf "%.1f", a + b }')"
done
printf 'total: %s ms (target < 1000 ms)\n' "$total_ms"
