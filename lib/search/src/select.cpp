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

}  // namespace

Selection select_policy(SearchResult& result, const SearchProblem& problem,
                        const std::vector<ExtraCandidate>& extra, int top,
                        const AccuracyFn& select_accuracy) {
  Selection s;
  const Metric tie = problem.budgets.empty() ? Metric::latency : problem.budgets[0].spec.metric;
  auto& pts = result.points;
  // The search's best first (better_point), then the extras in the order given.
  std::vector<int> feasible;
  for (size_t i = 0; i < pts.size(); ++i)
    if (pts[i].feasible) feasible.push_back(static_cast<int>(i));
  std::stable_sort(feasible.begin(), feasible.end(),
                   [&](int a, int b) { return better_point(pts[a], pts[b], tie); });
  if (static_cast<int>(feasible.size()) > std::max(0, top)) feasible.resize(std::max(0, top));
  s.candidates = feasible;
  for (const ExtraCandidate& e : extra) {
    if (e.bits.size() != problem.layers.size() || !in_ranges(e.bits, problem)) continue;
    const Costs c = problem.costs.total(e.bits);
    if (!within_budgets(c, problem.budgets)) continue;
    const quant::Policy policy = to_policy(problem.layers, e.bits);
    const std::string key = quant::policy_key(policy);
    auto same = std::find_if(pts.begin(), pts.end(), [&](const EvaluatedPoint& p) { return p.key == key; });
    int index = static_cast<int>(same - pts.begin());
    if (same == pts.end()) {
      EvaluatedPoint p;
      p.bits = e.bits;
      p.key = key;
      p.accuracy_pct = problem.accuracy(policy);
      p.costs = c;
      p.feasible = true;
      p.episode = -1;
      p.phase = e.label;
      pts.push_back(p);
    }
    if (std::find(s.candidates.begin(), s.candidates.end(), index) == s.candidates.end())
      s.candidates.push_back(index);
  }
  if (s.candidates.empty()) return s;
  for (int i : s.candidates) s.accuracy.push_back(select_accuracy(to_policy(problem.layers, pts[i].bits)));
  size_t best = 0;
  for (size_t k = 1; k < s.candidates.size(); ++k) {
    const EvaluatedPoint &a = pts[s.candidates[k]], &b = pts[s.candidates[best]];
    if (s.accuracy[k] != s.accuracy[best]) {
      if (s.accuracy[k] > s.accuracy[best]) best = k;
    } else if (better_point(a, b, tie) ||
               (!better_point(b, a, tie) && s.candidates[k] < s.candidates[best])) {
      best = k;
    }
  }
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
                      int rounds, int per_round, const AccuracyFn& select_accuracy) {
  if (!sel.done || rounds <= 0 || per_round <= 0) return;
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
    const double before = chosen_acc();
    int best_new = -1;
    double best_new_acc = before;
    int tried = 0;
    for (const Move& mv : moves) {
      if (tried >= per_round || stop_requested()) break;
      const quant::Policy policy = to_policy(problem.layers, mv.bits);
      const std::string key = quant::policy_key(policy);
      if (measured.count(key)) continue;
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
    }
    if (best_new < 0) break;
    sel.chosen = best_new;
  }
}

}  // namespace haq::search
