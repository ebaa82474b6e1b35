#!/usr/bin/env bash
# Installs what haq needs to build and test, from Debian's packages, if missing.
#   scripts/setup.sh          build + test dependencies
#   scripts/setup.sh --train  also PyTorch/ONNX for scripts/train_reference_models.py
set -euo pipefail
packages=(cmake g++ make libcli11-dev nlohmann-json3-dev libfmt-dev libonnx-dev libprotobuf-dev
          protobuf-compiler libonnx-testdata libdnnl-dev ocl-icd-opencl-dev catch2 dataset-fashion-mnist zlib1g-dev libpng-dev libjpeg-dev parallel jq
          clang libclang-rt-dev llvm)
# libonnx-testdata: ONNX's backend node tests, run by the onnx_conformance test (docs/conformance.md).
# jq: the documented examples pipe --json output into it (tests/docs/run_examples.py).
# ocl-icd-opencl-dev: only a Recommends of libdnnl-dev, but its CMake config
# requires OpenCL. clang + libclang-rt-dev (Debian's default clang, 14 on bookworm, and its
# libFuzzer/sanitizer runtimes) for scripts/fuzz.sh; llvm for llvm-symbolizer,
# which turns sanitizer reports into file:line stacks.
if [[ "${1:-}" == "--train" ]]; then
  packages+=(python3-torch python3-torchvision python3-onnx python3-numpy)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
