#!/usr/bin/python3
"""Per-layer figure of the policies found for several hardware targets.

    bench/policy_figure.py DIR OUT.svg [TITLE]

DIR holds one folder per profile (bismo-edge, bismo-cloud, bitfusion), each
with ddpg/policy.json (the layout bench/search_quality.sh writes). The figure
has one panel per profile: for every layer, a bar of its weight bits and a bar
of its activation bits, so the reader sees at a glance where the policies for
different hardware differ (HAQ's central finding). Plain SVG, no plotting
library (Debian's python3 has none installed by default here).
"""
import json
import os
import sys
from xml.sax.saxutils import escape

PROFILES = ("bismo-edge", "bismo-cloud", "bitfusion")
W_COLOR, A_COLOR = "#3b6fb6", "#e0892b"


def load(d):
    pols = {}
    for prof in PROFILES:
        pj = os.path.join(d, prof, "ddpg", "policy.json")
        if os.path.exists(pj):
            with open(pj) as f:
                pols[prof] = json.load(f)
    return pols


def short(name):
    """'/features/features.3/Conv' -> 'features.3'; keeps labels readable."""
    parts = [p for p in name.split("/") if p]
    if len(parts) >= 2:
        return parts[-2]
    return parts[-1] if parts else name


def budget_text(p):
    b = p.get("budgets", [{}])[0]
    acc = p.get("accuracy", {}).get("chosen", {}).get("test")
    s = f"{b.get('budget', '')}: {b.get('ratio', 0):.3f}x"
    if acc is not None:
        s += f", test top-1 {acc:.2f}%"
    return s


def figure(pols, title):
    names = [l["name"] for l in next(iter(pols.values()))["layers"]]
    n = len(names)
    bar, gap = 7, 6
    left, top, panel_h, label_h = 46, 52, 120, 90
    width = max(left + n * (2 * bar + gap) + 20, 560)
    height = top + len(pols) * (panel_h + 34) + label_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14" font-weight="bold">{escape(title)}: '
           f'bits per layer of the ddpg policy on each hardware target</text>',
           f'<rect x="{left}" y="27" width="10" height="10" fill="{W_COLOR}"/>'
           f'<text x="{left + 14}" y="36">weight bits</text>',
           f'<rect x="{left + 100}" y="27" width="10" height="10" fill="{A_COLOR}"/>'
           f'<text x="{left + 114}" y="36">activation bits</text>']
    y0 = top
    for prof, p in pols.items():
        layers = p["layers"]
        base = y0 + 14 + panel_h
        out.append(f'<text x="{left}" y="{y0 + 10}" font-weight="bold">{escape(prof)}</text>'
                   f'<text x="{left + 90}" y="{y0 + 10}">{escape(budget_text(p))}</text>')
        for b in (0, 2, 4, 6, 8):  # grid and axis labels
            y = base - b * panel_h / 8
            out.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" '
                       f'stroke="#ddd"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{b}</text>')
        for i, l in enumerate(layers):
            x = left + i * (2 * bar + gap) + gap / 2
            for k, (bits, color) in enumerate(((l["w_bits"], W_COLOR), (l["a_bits"], A_COLOR))):
                h = bits * panel_h / 8
                out.append(f'<rect x="{x + k * bar:.1f}" y="{base - h:.1f}" width="{bar}" '
                           f'height="{h:.1f}" fill="{color}"><title>{escape(l["name"])}: '
                           f'w{l["w_bits"]}a{l["a_bits"]}</title></rect>')
        y0 += panel_h + 34
    for i, name in enumerate(names):  # layer labels, rotated, under the last panel
        x = left + i * (2 * bar + gap) + gap / 2 + bar
        out.append(f'<text transform="translate({x:.1f},{y0 - 4}) rotate(60)">{escape(short(name))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: policy_figure.py DIR OUT.svg [TITLE]")
    pols = load(sys.argv[1])
    if not pols:
        sys.exit(f"policy_figure.py: no */ddpg/policy.json under {sys.argv[1]}")
    title = sys.argv[3] if len(sys.argv) > 3 else os.path.basename(sys.argv[1].rstrip("/"))
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write(figure(pols, title))
    os.replace(tmp, sys.argv[2])
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
