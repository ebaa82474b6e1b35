#!/usr/bin/env bash
# Post-training quantization quality at low bits (issue 19): top-1 on the
# whole 10k Fashion-MNIST test split, symmetric activations with nearest
# rounding, then asymmetric activations (--act-quant, the default) with
# nearest and adaptive rounding (--weight-rounding adaround), each against
# fp32 and its goal; then the
# one-off cost of adaptive rounding for every layer at every (w_bits, a_bits)
# a search of fmnist-mobilenet prepares. A benchmark, not a test.
#
#   bench/ptq_quality.sh               # build/apps/haq/haq, every row (~20 min on 2 cores)
#   ROWS=goals bench/ptq_quality.sh    # only the three goal rows and the cost
#   ROWS=cost bench/ptq_quality.sh     # only the cost, with and without the rounding cache
#   HAQ=path/to/haq CALIB=512 bench/ptq_quality.sh
#
# Every figure is haq eval's, at its defaults (512 calibration samples, seed
# 0). Results go to stdout; docs/benchmarks.md records a run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
haq="${HAQ:-$root/build/apps/haq/haq}"
[[ -x "$haq" ]] || { echo "ptq_quality.sh: $haq not built (set HAQ=...)" >&2; exit 2; }
calib="${CALIB:-512}"
rows="${ROWS:-all}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# eval MODEL ROUNDING BITS...: prints "fp32 quantized rounding_seconds calibration_seconds".
eval_row() {
  local model=$1 rounding=$2
  shift 2
  "$haq" eval "$model" --data fashion-mnist --samples 0 --calib "$calib" --weight-rounding "$rounding" "$@" \
    --json > "$tmp/out" 2> "$tmp/err" || { echo "haq eval $model $* failed:" >&2; cat "$tmp/err" >&2; exit 1; }
  /usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print(j["fp32"]["top1"], j["quantized"]["top1"], j["rounding"]["seconds"], j["calibration_seconds"])' "$tmp/out"
}

# row LABEL MODEL GOAL_POINTS BITS...: symmetric activations with nearest
# rounding (the defaults before 2026-12-03), then asymmetric activations (the
# default) with nearest and adaround; the gap to fp32 against the goal.
row() {
  local label=$1 model=$2 goal=$3
  shift 3
  read -r fp sym _ _ < <(eval_row "$model" nearest --act-quant symmetric "$@")
  read -r _ near _ _ < <(eval_row "$model" nearest "$@")
  read -r _ ada rs cs < <(eval_row "$model" adaround "$@")
  awk -v l="$label" -v fp="$fp" -v s="$sym" -v n="$near" -v a="$ada" -v g="$goal" -v rs="$rs" -v cs="$cs" 'BEGIN {
    gap = fp - a
    printf "%-44s %6.2f %8.2f %8.2f %9.2f %+7.2f %+7.2f  <= %-4s %-4s %7.1f %7.1f\n", l, fp, s, n, a, n - fp, a - fp, g,
      (g == "-" ? "" : gap <= g + 0 ? "met" : "no"), cs, rs }'
}

printf "%-44s %6s %8s %8s %9s %7s %7s  %-9s %7s %7s\n" "model, policy (10k test images)" "fp32" "sym near" "nearest" \
  "adaround" "d(near)" "d(ada)" "goal" "calib s" "round s"
m="$root/models"
if [[ "$rows" != cost ]]; then
  row "fmnist-mobilenet W4A4 (8-bit first/last)" "$m/fmnist-mobilenet.onnx" 0.8 --bits w4a4 --ends8
  row "fmnist-mobilenet W3A8" "$m/fmnist-mobilenet.onnx" 2 --bits w3a8
  row "fmnist-resnet W4A4 (all layers)" "$m/fmnist-resnet.onnx" 0.5 --bits w4a4
fi
if [[ "$rows" == all ]]; then
  row "fmnist-mobilenet W4A4 (all layers)" "$m/fmnist-mobilenet.onnx" - --bits w4a4
  row "fmnist-mobilenet W2A8" "$m/fmnist-mobilenet.onnx" - --bits w2a8
  row "fmnist-mlp W4A4 (all layers)" "$m/fmnist-mlp.onnx" - --bits w4a4
  for f in "$m"/corpus/*.onnx; do
    row "$(basename "$f" .onnx) W4A4 (all layers)" "$f" 3 --bits w4a4
  done
fi

# The one-off cost in a search: every weighted layer at every (w_bits, a_bits)
# of the default ranges 2..8 x 2..8 (35 distinct roundings per layer: a_bits
# 6..8 share the fp32 inputs' matrices) and the uniform baselines, printed by
# haq search before its first episode. One episode, few samples.
# search OUT [OPTION...]: the short search, its wall time in OUT.time.
search() {
  local out=$1
  shift
  /usr/bin/time -f "%e" -o "$out.time" "$haq" search "$m/fmnist-mobilenet.onnx" \
    --hw "$root/hardware-profiles/bitfusion.json" --data fashion-mnist --budget 'energy<=0.9x' --episodes 1 \
    --eval-samples 100 --calib-samples "$calib" --test-samples 100 --select-samples 100 \
    --weight-rounding adaround --out "$out" "$@" > "$out.out" 2> "$out.err" || { cat "$out.err" >&2; exit 1; }
}
search "$tmp/search"
line=$(grep -h "adaptive rounding:" "$tmp/search.out" "$tmp/search.err" | head -1)
echo
echo "one-off cost, fmnist-mobilenet, search ranges w 2..8 x a 2..8: ${line#*adaptive rounding: }"
awk -v l="$line" 'BEGIN { n = split(l, w, " "); for (i = 1; i <= n; ++i) if (w[i] == "in") { s = w[i + 1]; break }
  printf "against the goal of 120 s: %.2fx (%s)\n", s / 120, s <= 120 ? "met" : "not met" }'
# The same search again, given the first one's rounding cache (docs/quantization.md).
search "$tmp/cached" --rounding-cache "$tmp/search/rounding-cache.bin"
cache_line=$(grep -h "rounding cache:" "$tmp/cached.out" "$tmp/cached.err" | head -1)
echo "with the rounding cache ($(stat -c %s "$tmp/search/rounding-cache.bin") bytes): ${cache_line#*rounding cache: }"
echo "search wall time: $(cat "$tmp/search.time") s without the cache, $(cat "$tmp/cached.time") s with it"
cmp -s "$tmp/search/policy.json" "$tmp/cached/policy.json" && echo "policy.json: identical" ||
  echo "policy.json: DIFFERENT (a bug: the cache must not change a figure)"
