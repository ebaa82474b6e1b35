#pragma once
/// \file
/// The final choice of `haq search`. The search measures hundreds of policies
/// on a small subset (--eval-samples) and the best of many noisy measurements
/// is biased upward (the winner's curse): the policy that scores highest there
/// is often not the best one. So the best few feasible policies, and the
/// uniform policies that fit the budgets, are measured again on a larger
/// subset disjoint from the search's and from calibration, and the best there
/// is chosen (docs/search.md, "How the policy is chosen").

#include <functional>
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
  bool done = false;            ///< false: no feasible point, selection off, or stopped before any measurement
  std::vector<int> candidates;  ///< indices into SearchResult::points, in measuring order (measured ones only)
  std::vector<double> accuracy; ///< top-1 % on the selection subset, per candidate
  int chosen = -1;              ///< index into SearchResult::points
  int planned = 0;              ///< candidates select_policy meant to measure
  int refine_rounds_done = 0;   ///< refinement rounds that measured at least one move
  /// "" when every planned measurement was made; otherwise why the choice or
  /// the refinement stopped early ("time budget", "interrupted"): the chosen
  /// policy is then the best of what was measured.
  std::string stopped;
};

/// Where the final choice is, for a progress line.
struct SelectionProgress {
  const char* stage = "choosing";  ///< "choosing" (the candidates) or "refining"
  int done = 0, planned = 0;       ///< measurements on the subset made / planned in this stage (refining: this round)
  int round = 0, rounds = 0;       ///< refining: the round (1-based) and the rounds asked for
  double best_pct = 0;             ///< the best on the subset so far
  int best_point = -1;             ///< ... its index into SearchResult::points (-1: none yet)
};

/// Progress and stopping of the final choice (both optional).
struct SelectionHooks {
  /// After every measurement on the selection subset.
  std::function<void(const SelectionProgress&)> on_progress;
  /// Asked before every measurement: a reason to stop now ("time budget"),
  /// or "" to go on. A stop request (Ctrl-C) always stops ("interrupted").
  std::function<std::string()> stop_reason;
};

/// Offers `extra` (each within the searched bit ranges and every budget) to
/// the selection: each not yet among `result.points` is appended as a point
/// with episode -1, phase = its label and accuracy measured by
/// problem.accuracy. Then measures with `select_accuracy` the `top` best
/// feasible points of the search (by better_point) and the feasible extras,
/// and chooses the highest; ties go to the higher search accuracy, then the
/// lower cost on the first budget's metric, then the earlier point. Extras
/// outside the ranges or over a budget are skipped. Deterministic. When
/// `hooks.stop_reason` (or a stop request) stops it early, the best of the
/// candidates measured so far is chosen (none measured: not done) and
/// `stopped` says why; extras not reached are not added as points.
Selection select_policy(SearchResult& result, const SearchProblem& problem,
                        const std::vector<ExtraCandidate>& extra, int top,
                        const AccuracyFn& select_accuracy, const SelectionHooks& hooks = {});

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
/// request (Ctrl-C) or `hooks.stop_reason`: then the best measured so far is
/// kept and `stopped` says why. Deterministic without hooks.
void refine_selection(Selection& selection, SearchResult& result, const SearchProblem& problem,
                      int rounds, int per_round, const AccuracyFn& select_accuracy,
                      const SelectionHooks& hooks = {});

/// Measurements on the selection subset select_policy and refine_selection
/// would make at most, for an estimate of their cost: the `top` best
/// feasible points (as many as there are), the fitting extras, and `rounds`
/// x `per_round` moves. `new_points` (if given) gets how many of the extras
/// are not yet points (those are also measured on the search's subset).
int planned_selection_measurements(const SearchResult& result, const SearchProblem& problem,
                                   const std::vector<ExtraCandidate>& extra, int top, int rounds,
                                   int per_round, int* new_points = nullptr);

}  // namespace haq::search
