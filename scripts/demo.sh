#!/usr/bin/env bash
# On a fresh Debian machine: installs what is missing, builds haq, and runs
# the main job on the bundled defaults.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" --target haq
haq="${HAQ_BUILD_DIR:-$root/build}/apps/haq/haq"
"$haq" inspect "$root/models/fmnist-mobilenet.onnx"
