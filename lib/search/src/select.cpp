// The final choice: re-measure the best candidates on a larger disjoint subset,
// then refine the winner there with one-bit moves ranked by a surrogate.
#include "haq/search/select.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "haq/search/budget.h"

namespace haq::search {

namespace {

bool in_ranges(const BitsVector& bits, const SearchProblem& problem) {
  for (const Bits& b : bits)
    if (b.w < problem.w_range.min || b.w > problem.w_range.max || b.a < problem.a_range.min ||
        b.a > problem.a_range.max)
      return false;
  return true;
}

// Why to stop before the next measurement ("" to go on).
std::string stop_now(const SelectionHooks& hooks) {
  if (stop_requested()) return "interrupted";
  return hooks.stop_reason ? hooks.stop_reason() : std::string();
}

// A candidate of select_policy: a point, or an extra not yet a point.
struct PlannedCandidate {
  int point = -1;     ///< index into SearchResult::points, -1: extra[extra] is added when measured
  size_t extra = 0;
  std::string key;
};

// The candidates select_policy measures, in order: the search's best `top`
// feasible points (better_point), then the fitting extras not among them.
std::vector<PlannedCandidate> plan_candidates(const SearchResult& result, const SearchProblem& problem,
                                              const std::vector<ExtraCandidate>& extra, int top) {
  const Metric tie = problem.budgets.empty() ? Metric::latency : problem.budgets[0].spec.metric;
  const auto& pts = result.points;
  std::vector<int> feasible;
  for (size_t i = 0; i < pts.size(); ++i)
    if (pts[i].feasible) feasible.push_back(static_cast<int>(i));
  std::stable_sort(feasible.begin(), feasible.end(),
                   [&](int a, int b) { return better_point(pts[a], pts[b], tie); });
  if (static_cast<int>(feasible.size()) > std::max(0, top)) feasible.resize(std::max(0, top));
  std::vector<PlannedCandidate> plan;
  std::set<std::string> keys;
  for (int i : feasible) {
    plan.push_back({i, 0, pts[i].key});
    keys.insert(pts[i].key);
  }
  for (size_t k = 0; k < extra.size(); ++k) {
    const ExtraCandidate& e = extra[k];
    if (e.bits.size() != problem.layers.size() || !in_ranges(e.bits, problem)) continue;
    if (!within_budgets(problem.costs.total(e.bits), problem.budgets)) continue;
    const std::string key = quant::policy_key(to_policy(problem.layers, e.bits));
    if (!keys.insert(key).second) continue;
    auto same = std::find_if(pts.begin(), pts.end(), [&](const EvaluatedPoint& p) { return p.key == key; });
    plan.push_back({same == pts.end() ? -1 : static_cast<int>(same - pts.begin()), k, key});
  }
  return plan;
}

}  // namespace

int planned_selection_measurements(const SearchResult& result, const SearchProblem& problem,
                                   const std::vector<ExtraCandidate>& extra, int top, int rounds,
                                   int per_round, int* new_points) {
  const auto plan = plan_candidates(result, problem, extra, top);
  if (new_points)
    *new_points = static_cast<int>(
        std::count_if(plan.begin(), plan.end(), [](const PlannedCandidate& c) { return c.point < 0; }));
  if (plan.empty()) return 0;
  return static_cast<int>(plan.size()) + std::max(0, rounds) * std::max(0, per_round);
}

Selection select_policy(SearchResult& result, const SearchProblem& problem,
                        const std::vector<ExtraCandidate>& extra, int top,
                        const AccuracyFn& select_accuracy, const SelectionHooks& hooks) {
  Selection s;
  const Metric tie = problem.budgets.empty() ? Metric::latency : problem.budgets[0].spec.metric;
  auto& pts = result.points;
  const std::vector<PlannedCandidate> plan = plan_candidates(result, problem, extra, top);
  s.planned = static_cast<int>(plan.size());
  size_t best = 0;
  for (const PlannedCandidate& c : plan) {
    if (std::string why = stop_now(hooks); !why.empty()) {
      s.stopped = why;
      break;
    }
    int index = c.point;
    if (index < 0) {  // an extra: a point of its own, measured on the search's subset too
      const ExtraCandidate& e = extra[c.extra];
      EvaluatedPoint p;
      p.bits = e.bits;
      p.key = c.key;
      p.accuracy_pct = problem.accuracy(to_policy(problem.layers, e.bits));
      p.costs = problem.costs.total(e.bits);
      p.feasible = true;
      p.episode = -1;
      p.phase = e.label;
      pts.push_back(p);
      index = static_cast<int>(pts.size() - 1);
    }
    s.candidates.push_back(index);
    s.accuracy.push_back(select_accuracy(to_policy(problem.layers, pts[index].bits)));
    // The highest on the subset; ties: better_point, then the earlier point.
    const size_t k = s.candidates.size() - 1;
    if (k > 0) {
      const EvaluatedPoint &a = pts[s.candidates[k]], &b = pts[s.candidates[best]];
      if (s.accuracy[k] != s.accuracy[best]) {
        if (s.accuracy[k] > s.accuracy[best]) best = k;
      } else if (better_point(a, b, tie) ||
                 (!better_point(b, a, tie) && s.candidates[k] < s.candidates[best])) {
        best = k;
      }
    }
    if (hooks.on_progress) {
      SelectionProgress pr;
      pr.stage = "choosing";
      pr.done = static_cast<int>(s.candidates.size());
      pr.planned = s.planned;
      pr.best_pct = s.accuracy[best];
      pr.best_point = s.candidates[best];
      hooks.on_progress(pr);
    }
  }
  if (s.candidates.empty()) return s;
  s.chosen = s.candidates[best];
  s.done = true;
  return s;
}

// ---------------------------------------------------------------- refinement

namespace {

double noise(int bits) { return std::ldexp(1.0, -2 * bits); }  // 4^-bits

// Solves M x = v (M symmetric positive definite, n x n, row-major) by
// Gaussian elimination with partial pivoting. Deterministic.
std::vector<double> solve(std::vector<double> m, std::vector<double> v) {
  const size_t n = v.size();
  for (size_t c = 0; c < n; ++c) {
    size_t piv = c;
    for (size_t r = c + 1; r < n; ++r)
      if (std::abs(m[r * n + c]) > std::abs(m[piv * n + c])) piv = r;
    if (piv != c) {
      for (size_t k = 0; k < n; ++k) std::swap(m[c * n + k], m[piv * n + k]);
      std::swap(v[c], v[piv]);
    }
    const double d = m[c * n + c];
    if (d == 0) continue;
    for (size_t r = c + 1; r < n; ++r) {
      const double f = m[r * n + c] / d;
      if (f == 0) continue;
      for (size_t k = c; k < n; ++k) m[r * n + k] -= f * m[c * n + k];
      v[r] -= f * v[c];
    }
  }
  std::vector<double> x(n, 0.0);
  for (size_t c = n; c-- > 0;) {
    double acc = v[c];
    for (size_t k = c + 1; k < n; ++k) acc -= m[c * n + k] * x[k];
    x[c] = m[c * n + c] != 0 ? acc / m[c * n + c] : 0.0;
  }
  return x;
}

}  // namespace

double Surrogate::predict(const BitsVector& bits) const {
  double acc = c0;
  for (size_t l = 0; l < bits.size() && l < cw.size(); ++l)
    acc += cw[l] * noise(bits[l].w) + ca[l] * noise(bits[l].a);
  return acc;
}

Surrogate fit_surrogate(const std::vector<EvaluatedPoint>& points, size_t num_layers,
                        double floor_pct, double ridge) {
  Surrogate s;
  const size_t n = 1 + 2 * num_layers;
  std::vector<double> m(n * n, 0.0), v(n, 0.0), x(n);
  size_t used = 0;
  for (const EvaluatedPoint& p : points) {
    if (!(p.accuracy_pct >= floor_pct) || p.bits.size() != num_layers) continue;
    x[0] = 1;
    for (size_t l = 0; l < num_layers; ++l) {
      x[1 + 2 * l] = noise(p.bits[l].w);
      x[2 + 2 * l] = noise(p.bits[l].a);
    }
    for (size_t i = 0; i < n; ++i) {
      if (x[i] == 0) continue;
      for (size_t j = 0; j < n; ++j) m[i * n + j] += x[i] * x[j];
      v[i] += x[i] * p.accuracy_pct;
    }
    ++used;
  }
  if (used < 2) return s;
  // Ridge on the layer coefficients, scaled to the features' size.
  double trace = 0;
  for (size_t i = 1; i < n; ++i) trace += m[i * n + i];
  const double lambda = ridge * (trace > 0 ? trace / static_cast<double>(n - 1) : 1.0);
  for (size_t i = 1; i < n; ++i) m[i * n + i] += lambda;
  const std::vector<double> c = solve(m, v);
  s.c0 = c[0];
  for (size_t l = 0; l < num_layers; ++l) {
    s.cw.push_back(c[1 + 2 * l]);
    s.ca.push_back(c[2 + 2 * l]);
  }
  return s;
}

void refine_selection(Selection& sel, SearchResult& result, const SearchProblem& problem,
                      int rounds, int per_round, const AccuracyFn& select_accuracy,
                      const SelectionHooks& hooks) {
  if (!sel.done || rounds <= 0 || per_round <= 0 || !sel.stopped.empty()) return;
  auto& pts = result.points;
  const size_t L = problem.layers.size();
  double best_search = -1;
  for (const auto& p : pts)
    if (p.feasible) best_search = std::max(best_search, p.accuracy_pct);
  // Near the best: the region the moves explore.
  const Surrogate sur = fit_surrogate(pts, L, best_search - 10.0);
  if (sur.cw.empty()) return;
  std::set<std::string> measured;  // keys measured on the subset
  for (int i : sel.candidates) measured.insert(pts[i].key);
  std::map<std::string, int> point_of;
  for (size_t i = 0; i < pts.size(); ++i) point_of.emplace(pts[i].key, static_cast<int>(i));
  auto chosen_acc = [&] {
    for (size_t k = 0; k < sel.candidates.size(); ++k)
      if (sel.candidates[k] == sel.chosen) return sel.accuracy[k];
    return -1.0;
  };
  int refined = 0;
  for (int round = 0; round < rounds; ++round) {
    const BitsVector start = pts[sel.chosen].bits;
    const double base = sur.predict(start);
    struct Move {
      double gain;
      BitsVector bits;
    };
    std::vector<Move> moves;
    // (layer, side): side 0 = weights, 1 = activations.
    auto get = [](BitsVector& b, size_t l, int side) -> int& { return side ? b[l].a : b[l].w; };
    auto range = [&](int side) { return side ? problem.a_range : problem.w_range; };
    for (size_t l = 0; l < L; ++l)
      for (int side = 0; side < 2; ++side) {
        BitsVector up = start;
        if (++get(up, l, side) > range(side).max) continue;
        auto consider = [&](const BitsVector& b) {
          if (!within_budgets(problem.costs.total(b), problem.budgets)) return;
          double gain = sur.predict(b) - base;
          if (gain > 0) moves.push_back({gain, b});
        };
        consider(up);
        for (size_t l2 = 0; l2 < L; ++l2)
          for (int side2 = 0; side2 < 2; ++side2) {
            if (l2 == l && side2 == side) continue;
            BitsVector b = up;
            if (--get(b, l2, side2) < range(side2).min) continue;
            consider(b);
          }
      }
    std::stable_sort(moves.begin(), moves.end(),
                     [](const Move& a, const Move& b) { return a.gain > b.gain; });
    // The moves this round measures: the best predicted ones not measured yet.
    std::vector<std::pair<const Move*, std::string>> todo;
    std::set<std::string> todo_keys;
    for (const Move& mv : moves) {
      if (static_cast<int>(todo.size()) >= per_round) break;
      std::string key = quant::policy_key(to_policy(problem.layers, mv.bits));
      if (measured.count(key) || !todo_keys.insert(key).second) continue;
      todo.emplace_back(&mv, std::move(key));
    }
    const double before = chosen_acc();
    int best_new = -1;
    double best_new_acc = before;
    int tried = 0;
    for (const auto& [move, key] : todo) {
      if (std::string why = stop_now(hooks); !why.empty()) {
        sel.stopped = why;
        break;
      }
      const Move& mv = *move;
      const quant::Policy policy = to_policy(problem.layers, mv.bits);
      int index;
      auto it = point_of.find(key);
      if (it != point_of.end()) {
        index = it->second;
      } else {
        EvaluatedPoint p;
        p.bits = mv.bits;
        p.key = key;
        p.accuracy_pct = problem.accuracy(policy);
        p.costs = problem.costs.total(mv.bits);
        p.feasible = true;
        p.episode = -1;
        p.phase = "refine-" + std::to_string(++refined);
        pts.push_back(p);
        index = static_cast<int>(pts.size() - 1);
        point_of.emplace(key, index);
      }
      const double acc = select_accuracy(policy);
      measured.insert(key);
      sel.candidates.push_back(index);
      sel.accuracy.push_back(acc);
      ++tried;
      if (acc > best_new_acc) {
        best_new_acc = acc;
        best_new = index;
      }
      if (hooks.on_progress) {
        SelectionProgress pr;
        pr.stage = "refining";
        pr.done = tried;
        pr.planned = static_cast<int>(todo.size());
        pr.round = round + 1;
        pr.rounds = rounds;
        pr.best_pct = std::max(before, best_new_acc);
        pr.best_point = best_new >= 0 ? best_new : sel.chosen;
        hooks.on_progress(pr);
      }
    }
    if (tried > 0) ++sel.refine_rounds_done;
    if (best_new >= 0) sel.chosen = best_new;  // the best measured, also when stopped mid-round
    if (best_new < 0 || !sel.stopped.empty()) break;
  }
}

}  // namespace haq::search
