#pragma once
/// \file
/// The HAQ environment (DESIGN.md §6): an episode walks the quantizable
/// layers in topological order with two decisions per layer (weight bits,
/// then activation bits). Unlike the reference implementation, the dynamic
/// state columns start afresh every episode and the weight/activation flag
/// is right for every layer.

#include <array>
#include <vector>

#include "haq/search/budget.h"
#include "haq/search/costs.h"

namespace haq::search {

/// Number of state features per decision.
inline constexpr int kStateDim = 10;
/// One state: [layer index, is depthwise, c_in, c_out, stride, kernel,
/// #params, input h*w, w/a flag (0 weights, 1 activations), previous action].
using State = std::array<float, kStateDim>;

class Environment {
 public:
  /// `costs` must outlive the environment.
  Environment(std::vector<LayerInfo> layers, const CostModel& costs, std::vector<Budget> budgets,
              BitRange w_range, BitRange a_range);

  size_t num_layers() const { return layers_.size(); }
  /// 2 x layers: weight then activation of layer 0, then of layer 1, ...
  size_t num_decisions() const { return 2 * layers_.size(); }
  const std::vector<LayerInfo>& layers() const { return layers_; }
  const std::vector<Budget>& budgets() const { return budgets_; }
  const CostModel& costs() const { return *costs_; }
  BitRange w_range() const { return w_range_; }
  BitRange a_range() const { return a_range_; }

  /// State of decision `t` (layer t/2; weights if t is even) given the
  /// previous decision's action (0 for the first decision of an episode).
  /// Static columns are min-max normalised over the layers (a constant
  /// column is 0); the flag and the previous action are already in [0, 1].
  State state(size_t t, float prev_action) const;

  /// Maps an action in [0, 1] to bits: round(b_min - 0.5 + a (b_max - b_min + 1)),
  /// clamped to the range: equal-width bins, a = 0 gives b_min, a = 1 gives b_max.
  static int action_to_bits(double action, BitRange range);

  /// Bits of a whole episode's actions (2 per layer, weights first).
  BitsVector actions_to_bits(const std::vector<float>& actions) const;

  /// The action at the centre of the bin of `bits` (inverse of action_to_bits).
  static float bits_to_action(int bits, BitRange range);

  Costs total(const BitsVector& bits) const { return costs_->total(bits); }
  bool feasible(const BitsVector& bits) const { return within_budgets(total(bits), budgets_); }

  /// HAQ's budget enforcement: from the last layer to the first, lower the
  /// activation bits by one, check, lower the weight bits by one, check, and
  /// sweep again until every budget holds or every layer is at the minimum.
  BitsVector enforce_budgets(BitsVector bits) const;

  /// Reward = 0.1 x (accuracy - fp32 accuracy), both in percent.
  static double reward(double accuracy_pct, double fp32_accuracy_pct) {
    return 0.1 * (accuracy_pct - fp32_accuracy_pct);
  }

 private:
  std::vector<LayerInfo> layers_;
  const CostModel* costs_;
  std::vector<Budget> budgets_;
  BitRange w_range_, a_range_;
  std::vector<std::array<float, 8>> static_;  // normalised static columns per layer
};

}  // namespace haq::search
