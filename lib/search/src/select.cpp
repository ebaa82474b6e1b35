// The final choice: re-measure the best candidates on a larger disjoint subset.
#include "haq/search/select.h"

#include <algorithm>
#include <numeric>

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

}  // namespace haq::search
