#!/usr/bin/env bash
# Throughput of `haq eval` (fp32 and W8A8, oneDNN) against ONNX Runtime fp32
# (2 threads) on the same model and batch. A benchmark, not a test.
#
#   bench/eval_throughput.sh            # uses build/apps/haq/haq
#   HAQ=build-x/apps/haq/haq bench/eval_throughput.sh
#
# Needs: tests/ort/node_modules (npm install --ignore-scripts in tests/ort),
# /usr/bin/python3 with numpy (random inputs), and for MobileNetV2
# models/generated/mobilenet_v2.onnx (made here with scripts/export_torchvision.py
# if missing). Results go to stdout; docs/benchmarks.md records a run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
haq="${HAQ:-$root/build/apps/haq/haq}"
[[ -x "$haq" ]] || { echo "eval_throughput.sh: $haq not built (set HAQ=...)" >&2; exit 2; }
[[ -d "$root/tests/ort/node_modules/onnxruntime-node" ]] ||
  { echo "eval_throughput.sh: run 'npm install --ignore-scripts' in tests/ort first" >&2; exit 2; }
py=/usr/bin/python3
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
threads="${ORT_THREADS:-2}"
# Quantized bitwidths to time (HAQ_BITS="w8a8 w8a7": also W8A7, which needs no
# split on CPUs without VNNI, docs/quantization.md).
bits_list="${HAQ_BITS:-w8a8}"
# oneDNN's OpenMP threads spin while waiting; on a shared machine that costs
# more than it saves. Override by setting OMP_WAIT_POLICY yourself.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

# random_data N C H W CLASSES PREFIX: PREFIX-img.npy, PREFIX-lab.npy and
# PREFIX-batch.bin (the first batch as raw float32 for ONNX Runtime).
random_data() {
  "$py" - "$@" <<'PY'
import sys, numpy as np
n, c, h, w, classes, batch = map(int, sys.argv[1:7]); prefix = sys.argv[7]
rng = np.random.default_rng(0)
x = rng.random((n, c, h, w), dtype=np.float32)
np.save(prefix + "-img.npy", x)
np.save(prefix + "-lab.npy", rng.integers(0, classes, n).astype(np.int64))
x[:batch].tofile(prefix + "-batch.bin")
PY
}

json_field() { "$py" -c "import sys, json; j = json.load(sys.stdin); print(j$1)"; }

# bench NAME MODEL C H W CLASSES BATCH SAMPLES ORT_RUNS
bench() {
  local name=$1 model=$2 c=$3 h=$4 w=$5 classes=$6 batch=$7 samples=$8 runs=$9
  random_data "$samples" "$c" "$h" "$w" "$classes" "$batch" "$tmp/$name"
  local ort
  ort="$(cd "$root/tests/ort" && node run_ort.js "$model" "$tmp/$name-batch.bin" "$batch,$c,$h,$w" \
         "$tmp/$name-ort.bin" --threads "$threads" --runs "$runs" | json_field '["samples_per_second"]')"
  local bits out fp q
  for bits in $bits_list; do
    out="$("$haq" eval "$model" --data "$tmp/$name-img.npy,$tmp/$name-lab.npy" --batch "$batch" \
           --samples "$samples" --calib "$batch" --bits "$bits" --json)"
    fp="$(echo "$out" | json_field '["fp32"]["samples_per_second"]')"
    q="$(echo "$out" | json_field '["quantized"]["samples_per_second"]')"
    "$py" - "$name" "$batch" "$bits" "$fp" "$q" "$ort" <<'PY'
import sys
name, batch, bits = sys.argv[1], sys.argv[2], sys.argv[3].upper()
fp, q, ort = map(float, sys.argv[4:7])
print(f"{name:<18} batch {batch:>4}  haq fp32 {fp:9.1f}/s  haq {bits} {q:9.1f}/s  "
      f"ORT fp32 {ort:9.1f}/s  {bits}/ORT {q / ort:5.2f}x  fp32/ORT {fp / ort:5.2f}x")
PY
  done
}

isa="AVX2 or older (no VNNI: W8A8 layers run split)"
grep -qw avx512_vnni /proc/cpuinfo && isa="AVX-512 VNNI"
grep -qw avx_vnni /proc/cpuinfo && isa="AVX-VNNI"
echo "haq: $haq; ONNX Runtime: $threads threads; $(nproc) cores; int8: $isa"
if [[ -f "$root/models/fmnist-mobilenet.onnx" ]]; then
  bench fmnist-mobilenet "$root/models/fmnist-mobilenet.onnx" 1 28 28 10 256 2560 10
else
  echo "fmnist-mobilenet: models/fmnist-mobilenet.onnx missing (scripts/train_reference_models.py)"
fi
mnv2="$root/models/generated/mobilenet_v2.onnx"
[[ -f "$mnv2" ]] || "$py" "$root/scripts/export_torchvision.py" --only mobilenet_v2 >&2
bench mobilenet_v2 "$mnv2" 3 224 224 1000 32 128 4
