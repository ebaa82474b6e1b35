#!/usr/bin/env bash
# On a fresh Debian machine: installs what is missing, builds haq, and runs
# the main job on the bundled defaults: a HAQ search (DDPG) of per-layer bits
# for fmnist-mobilenet on the BISMO edge accelerator at half the all-8-bit
# latency, accuracy measured on Fashion-MNIST with oneDNN integer kernels.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
haq="${HAQ_BUILD_DIR:-$root/build}/apps/haq/haq"
out="${1:-$root/runs/demo}"
"$haq" inspect "$root/models/fmnist-mobilenet.onnx"
"$haq" search "$root/models/fmnist-mobilenet.onnx" --hw "$root/hardware-profiles/bismo-edge.json" \
    --data fashion-mnist --budget 'latency<=0.5x' \
    --config "$root/configs/demo-fmnist-mobilenet-bismo-edge.json" --out "$out"
echo
echo "report: $out/report.html (summary: $out/report.md, policy: $out/policy.json)"
