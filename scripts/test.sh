#!/usr/bin/env bash
# On a fresh Debian machine: installs what is missing, builds, runs every test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
# ONNX Runtime (the reference for fp32 outputs) from npm; its install script
# downloads and fails here, the CPU library is inside the package.
if [[ -f "$root/tests/ort/package.json" && ! -d "$root/tests/ort/node_modules/onnxruntime-node" ]]; then
  (cd "$root/tests/ort" && npm install --ignore-scripts --no-audit --no-fund >/dev/null) ||
    echo "test.sh: warning: npm install of onnxruntime-node failed"
fi
"$root/scripts/build.sh"
(cd "${HAQ_BUILD_DIR:-$root/build}" && ctest --output-on-failure -j2 --timeout 900)
# The hardening stage (docs/reliability.md): a clang ASan+UBSan build, every
# fuzz target for 60 s, the unit and e2e tests under the sanitizers. On by
# default, as CI runs it (about 15 of the ~22 minutes on 2 cores);
# HAQ_TEST_HARDENING=0 skips it for a quick local run.
if [[ "${HAQ_TEST_HARDENING:-1}" == 1 ]]; then
  "$root/scripts/test_sanitized.sh" 60
fi
