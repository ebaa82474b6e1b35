#!/usr/bin/python3
"""Diagnostic for docs/benchmarks.md, not a way to choose: the test-split
accuracy of the N feasible policies of a finished search that scored highest
on its own split (haq eval --policy on each), to see the best any policy the
search found reaches under the budget. haq itself never chooses on the test
split.

    /usr/bin/python3 bench/test_split_ceiling.py RUN_DIR MODEL.onnx [N=60] [DATA=fashion-mnist]

RUN_DIR is a `haq search --out` folder (policy.json, points.csv). Uses
$HAQ, else build/apps/haq/haq. Prints one line per policy, then the best five.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
haq = os.environ.get("HAQ", os.path.join(root, "build", "apps", "haq", "haq"))
if len(sys.argv) < 3:
    sys.exit(__doc__)
run, model = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 60
data = sys.argv[4] if len(sys.argv) > 4 else "fashion-mnist"
names = [l["name"] for l in json.load(open(os.path.join(run, "policy.json")))["layers"]]
rows = [r for r in csv.DictReader(open(os.path.join(run, "points.csv")))
        if r["feasible"] == "1" and r["kind"] in ("search", "chosen", "uniform")]
rows.sort(key=lambda r: -float(r["acc_search"]))
results = []
with tempfile.TemporaryDirectory() as tmp:
    pol = os.path.join(tmp, "policy.json")
    for r in rows[:n]:
        layers = []
        for name, t in zip(names, r["policy"].split()):
            w, a = t[1:].split("a")
            layers.append({"name": name, "w_bits": int(w), "a_bits": int(a)})
        with open(pol, "w") as f:
            json.dump({"schema": "haq.policy/1", "layers": layers}, f)
        out = subprocess.run([haq, "eval", model, "--data", data, "--policy", pol, "--json"],
                             capture_output=True, text=True, check=True)
        acc = json.loads(out.stdout)["quantized"]["top1"]
        results.append((acc, r["label"], r["acc_search"]))
        print(f"{r['label']:>14}  search {r['acc_search']:>6}  test {acc:.2f}", flush=True)
results.sort(key=lambda x: -x[0])
print("best on the test split:", ", ".join(f"{l} {a:.2f}%" for a, l, _ in results[:5]))
