#!/usr/bin/env bash
# Renders a report.html to a PNG with headless Chromium (Debian package
# `chromium`), e.g. for docs/report-screenshot.png:
#   scripts/render_report.sh OUT/report.html docs/report-screenshot.png [WIDTH] [HEIGHT]
# The page is self-contained, so Chromium runs fully offline.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 REPORT.html OUT.png [WIDTH=1280] [HEIGHT=2400]" >&2
  exit 2
fi
html="$1"
png="$2"
width="${3:-1280}"
height="${4:-2400}"
[[ -f "$html" ]] || { echo "$0: $html: no such file" >&2; exit 2; }
browser="$(command -v chromium || command -v chromium-browser || true)"
[[ -n "$browser" ]] || { echo "$0: chromium not found (apt-get install chromium)" >&2; exit 2; }
abs_html="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
abs_png="$(cd "$(dirname "$png")" && pwd)/$(basename "$png")"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile" --window-size="$width,$height" \
  --screenshot="$abs_png" "file://$abs_html" >/dev/null 2>&1 || true
[[ -s "$abs_png" ]] || { echo "$0: chromium wrote no screenshot" >&2; exit 1; }
echo "$abs_png"
