#!/usr/bin/env bash
# Search quality benchmark (issue 5 "Quality"): for each model and each
# (profile, budget), runs ddpg (600 episodes), then random, greedy and
# knapsack with as many episodes as ddpg evaluated distinct policies (the same
# number of evaluations), and prints a markdown table of the chosen policies' test
# accuracy against fp32 and the best uniform policy that fits the budget, with
# wall time and evaluations per second, then the per-layer bits of ddpg's
# policy for each hardware target (a table, and an SVG figure written to
# OUT/MODEL-policies.svg by bench/policy_figure.py). Results go to
# docs/benchmarks.md by hand.
#
#   bench/search_quality.sh [--episodes 600] [--eval-samples 2000] [--models "fmnist-mobilenet fmnist-resnet"]
#                           [--algos "ddpg random greedy knapsack"] [--out bench-out]
#                           [--targets "bismo-edge:latency<=0.5x bismo-cloud:latency<=0.5x bitfusion:energy<=0.75x"]
#                           [--weight-rounding nearest|adaround]
# Runs already complete (policy.json and wall.txt present) are kept, so the
# bench can be resumed or extended run by run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
haq="${HAQ:-${HAQ_BUILD_DIR:-$root/build}/apps/haq/haq}"
episodes=600
eval_samples=2000
models="fmnist-mobilenet fmnist-resnet"
algos="ddpg random greedy knapsack"
out="$root/bench-out/search-quality"
targets_list="bismo-edge:latency<=0.5x bismo-cloud:latency<=0.5x bitfusion:energy<=0.75x"
rounding=nearest
while [[ $# -gt 0 ]]; do
  case "$1" in
    --episodes) episodes="$2"; shift 2 ;;
    --eval-samples) eval_samples="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --algos) algos="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --targets) targets_list="$2"; shift 2 ;;
    --weight-rounding) rounding="$2"; shift 2 ;;
    *) echo "usage: $0 [--episodes N] [--eval-samples N] [--models LIST] [--algos LIST] [--targets LIST] [--weight-rounding R] [--out DIR]" >&2; exit 2 ;;
  esac
done
read -r -a targets <<< "$targets_list"
mkdir -p "$out"
for model in $models; do
  for t in "${targets[@]}"; do
    profile="${t%%:*}"; budget="${t#*:}"
    for algo in $algos; do
      dir="$out/$model/$profile/$algo"
      [[ -f "$dir/policy.json" && -f "$dir/wall.txt" ]] && continue
      # The baselines get as many episodes as ddpg evaluated distinct
      # policies (ddpg's episodes repeat policies; a repeat costs nothing), so
      # every algorithm is compared at the same number of evaluations at most.
      n_episodes="$episodes"
      ddpg_policy="$out/$model/$profile/ddpg/policy.json"
      if [[ "$algo" != ddpg && -f "$ddpg_policy" ]]; then
        n_episodes=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["search"]["policies_evaluated"])' "$ddpg_policy")
      fi
      # A run killed midway continues from its checkpoint (same result as
      # an uninterrupted run; its wall time then counts only the last part).
      resume=()
      [[ -d "$dir/checkpoint" ]] && resume=(--resume)
      start=$(date +%s.%N)
      "$haq" search "$root/models/$model.onnx" --hw "$root/hardware-profiles/$profile.json" \
        --data fashion-mnist --budget "$budget" --algo "$algo" --episodes "$n_episodes" \
        --eval-samples "$eval_samples" --weight-rounding "$rounding" --seed 0 --quiet "${resume[@]}" --out "$dir" || true
      end=$(date +%s.%N)
      echo "$start $end" > "$dir/wall.txt"
    done
  done
done
# The table: chosen test top-1, fp32, best fitting uniform-k, ratios, wall time, evals/s.
/usr/bin/python3 - "$out" "$models" "$algos" <<'PY'
import csv, json, os, sys
out, models, algos = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
print("| model | profile | budget | algo | test top-1 | chosen from | fp32 | best fitting uniform | ratio | policies | wall | evals/s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for model in models:
    for prof in ("bismo-edge", "bismo-cloud", "bitfusion"):
        for algo in algos:
            d = os.path.join(out, model, prof, algo)
            pj = os.path.join(d, "policy.json")
            if not os.path.exists(pj):
                print(f"| {model} | {prof} | | {algo} | (no policy) | | | | | | | |"); continue
            p = json.load(open(pj))
            b = p["budgets"][0]
            best_u = None
            with open(os.path.join(d, "points.csv")) as f:
                for row in csv.DictReader(f):
                    if row.get("kind") == "uniform" and row.get("feasible") in ("true", "1", "yes"):
                        acc = row.get("acc_test") or ""
                        if acc and (best_u is None or float(acc) > best_u[1]):
                            best_u = (row.get("label"), float(acc))
            # A uniform policy chosen by the final choice is the chosen row of
            # points.csv (one row per distinct policy): count it as a uniform too.
            src = p["search"].get("chosen_from", "")
            if src.startswith("uniform-"):
                acc = p["accuracy"]["chosen"]["test"]
                if best_u is None or acc > best_u[1]:
                    best_u = (src, acc)
            s, e = map(float, open(os.path.join(d, "wall.txt")).read().split())
            n = p["search"]["policies_evaluated"]
            u = f"{best_u[0]} {best_u[1]:.2f}%" if best_u else "none fits"
            print(f"| {model} | {prof} | {b['budget']} | {algo} | {p['accuracy']['chosen']['test']:.2f}% | {src or '-'} | "
                  f"{p['accuracy']['fp32']['test']:.2f}% | {u} | {b['ratio']:.3f}x | {n} | {e - s:.0f} s | {n / (e - s):.2f} |")
PY
# Do the policies differ per hardware? Per-layer bits side by side, and a figure.
for model in $models; do
  /usr/bin/python3 "$root/bench/policy_figure.py" "$out/$model" "$out/$model-policies.svg" "$model" || true
  echo; echo "Per-layer bits (w/a) of ddpg's policy for $model:"
  /usr/bin/python3 - "$out/$model" <<'PY'
import json, os, sys
d = sys.argv[1]
pols = {}
for prof in ("bismo-edge", "bismo-cloud", "bitfusion"):
    pj = os.path.join(d, prof, "ddpg", "policy.json")
    if os.path.exists(pj): pols[prof] = json.load(open(pj))["layers"]
if not pols: sys.exit(0)
names = [l["name"] for l in next(iter(pols.values()))]
print("| layer | " + " | ".join(pols) + " |"); print("|---" * (len(pols) + 1) + "|")
for i, n in enumerate(names):
    print(f"| {n} | " + " | ".join(f"{pols[p][i]['w_bits']}/{pols[p][i]['a_bits']}" for p in pols) + " |")
PY
done
