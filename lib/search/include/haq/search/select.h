#pragma once
/// \file
/// The final choice of `haq search`. The search measures hundreds of policies
/// on a small subset (--eval-samples) and the best of many noisy measurements
/// is biased upward (the winner's curse): the policy that scores highest there
/// is often not the best one. So the best few feasible policies, and the
/// uniform policies that fit the budgets, are measured again on a larger
/// subset disjoint from the search's and from calibration, and the best there
/// is chosen (docs/search.md, "How the policy is chosen").

#include <string>
#include <vector>

#include "haq/search/search.h"

namespace haq::search {

/// A policy offered to the selection besides the search's own points.
struct ExtraCandidate {
  std::string label;  ///< e.g. "uniform-4"; becomes the point's phase
  BitsVector bits;
};

/// What the selection measured.
struct Selection {
  bool done = false;            ///< false: no feasible point, or selection off
  std::vector<int> candidates;  ///< indices into SearchResult::points, in measuring order
  std::vector<double> accuracy; ///< top-1 % on the selection subset, per candidate
  int chosen = -1;              ///< index into SearchResult::points
};

/// Offers `extra` (each within the searched bit ranges and every budget) to
/// the selection: each not yet among `result.points` is appended as a point
/// with episode -1, phase = its label and accuracy measured by
/// problem.accuracy. Then measures with `select_accuracy` the `top` best
/// feasible points of the search (by better_point) and the feasible extras,
/// and chooses the highest; ties go to the higher search accuracy, then the
/// lower cost on the first budget's metric, then the earlier point. Extras
/// outside the ranges or over a budget are skipped. Deterministic.
Selection select_policy(SearchResult& result, const SearchProblem& problem,
                        const std::vector<ExtraCandidate>& extra, int top,
                        const AccuracyFn& select_accuracy);

/// A surrogate of the accuracy, fitted on the search's measurements:
/// accuracy ~ c0 + sum over layers of cw[l] * 4^-w[l] + ca[l] * 4^-a[l]
/// (quantization noise power falls by 4 per bit), by ridge regression.
struct Surrogate {
  double c0 = 0;
  std::vector<double> cw, ca;
  double predict(const BitsVector& bits) const;
};

/// Fits the surrogate on the feasible and infeasible points whose accuracy is
/// at least `floor_pct` (the region near the best); `ridge` weighs the
/// penalty on the layer coefficients. Empty (cw.empty()) with fewer than two points.
Surrogate fit_surrogate(const std::vector<EvaluatedPoint>& points, size_t num_layers,
                        double floor_pct, double ridge = 1e-3);

/// Refines a done selection, on the same larger subset: `rounds` times,
/// from the chosen policy, the `per_round` moves the surrogate predicts best
/// (one layer's w or a bits up by one, alone or with one other layer's w or a
/// down by one, within the ranges and every budget, not measured on the
/// subset yet) are measured on the search's subset (problem.accuracy, as new
/// points with episode -1 and phase "refine-1", "refine-2", ...) and on the larger subset; the
/// best there becomes the chosen policy if it beats it. Stops early when no
/// move is predicted to gain or none beats the chosen one, or at a stop
/// request (Ctrl-C). Deterministic.
void refine_selection(Selection& selection, SearchResult& result, const SearchProblem& problem,
                      int rounds, int per_round, const AccuracyFn& select_accuracy);

}  // namespace haq::search
