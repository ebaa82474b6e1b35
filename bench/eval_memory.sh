#!/usr/bin/env bash
# Peak memory (max RSS) and wall time of `haq eval` on torchvision's
# MobileNetV2 (224x224, random weights) over an image folder, at the
# defaults, against the 1 GB goal. A benchmark, not a test.
#
#   bench/eval_memory.sh                 # build/apps/haq/haq, 64 mixed-size images
#   HAQ=path/to/haq IMAGES=16 bench/eval_memory.sh
#
# Needs /usr/bin/python3 with python3-torch, python3-torchvision, python3-onnx
# (scripts/setup.sh --train) to export models/generated/mobilenet_v2.onnx if
# missing, and python3-pil for the JPEGs (without it the folder is PNG only).
# Results go to stdout; docs/benchmarks.md records a run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
haq="${HAQ:-$root/build/apps/haq/haq}"
[[ -x "$haq" ]] || { echo "eval_memory.sh: $haq not built (set HAQ=...)" >&2; exit 2; }
py=/usr/bin/python3
images="${IMAGES:-64}"
goal_kb=$((1000 * 1000))  # 1 GB
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mnv2="$root/models/generated/mobilenet_v2.onnx"
[[ -f "$mnv2" ]] || "$py" "$root/scripts/export_torchvision.py" --only mobilenet_v2 >&2
per_class=$(((images + 3) / 4))
"$py" "$root/scripts/make_image_folder.py" "$tmp/mixed" --classes 4 --per-class "$per_class" --min 160 --max 320
"$py" "$root/scripts/make_image_folder.py" "$tmp/same" --classes 4 --per-class "$per_class" --min 224 --max 224

# run NAME ARGS...: one haq eval under /usr/bin/time -v.
run() {
  local name=$1
  shift
  /usr/bin/time -v "$haq" eval "$mnv2" "$@" > "$tmp/out" 2> "$tmp/time" ||
    { echo "$name: haq eval failed:" >&2; cat "$tmp/time" >&2; exit 1; }
  local rss wall batch
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/time")
  batch=$(sed -n 's/.*batch \([0-9]*\)).*/\1/p' "$tmp/out" | head -1)
  awk -v n="$name" -v b="$batch" -v r="$rss" -v g="$goal_kb" -v w="$wall" \
    'BEGIN { printf "%-34s batch %4s  peak RSS %7.1f MB  %5.2fx of the 1 GB goal  wall %s\n", n, b, r / 1000, r / g, w }'
}

echo "haq: $haq; $(nproc) cores; $images images per folder; MobileNetV2 224x224"
run "same-size 224x224, defaults" --data "$tmp/same"
run "mixed sizes, --preprocess imagenet" --data "$tmp/mixed" --preprocess imagenet
run "mixed sizes, imagenet, --batch 64" --data "$tmp/mixed" --preprocess imagenet --batch 64
