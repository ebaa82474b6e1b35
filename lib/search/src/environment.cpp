#include "haq/search/environment.h"

#include <algorithm>
#include <cmath>

#include "haq/core/error.h"

namespace haq::search {

Environment::Environment(std::vector<LayerInfo> layers, const CostModel& costs,
                         std::vector<Budget> budgets, BitRange w_range, BitRange a_range)
    : layers_(std::move(layers)),
      costs_(&costs),
      budgets_(std::move(budgets)),
      w_range_(w_range),
      a_range_(a_range) {
  HAQ_ASSERT(!layers_.empty());
  HAQ_ASSERT(costs.num_layers() == layers_.size());
  HAQ_ASSERT(w_range.min >= 1 && w_range.min <= w_range.max && w_range.max <= 8);
  HAQ_ASSERT(a_range.min >= 1 && a_range.min <= a_range.max && a_range.max <= 8);
  const size_t n = layers_.size();
  std::vector<std::array<double, 8>> raw(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& l = layers_[i];
    raw[i] = {static_cast<double>(i), l.depthwise ? 1.0 : 0.0, l.c_in, l.c_out, l.stride,
              l.kernel, l.params, l.in_hw};
  }
  static_.assign(n, {});
  for (size_t c = 0; c < 8; ++c) {
    double lo = raw[0][c], hi = raw[0][c];
    for (size_t i = 1; i < n; ++i) {
      lo = std::min(lo, raw[i][c]);
      hi = std::max(hi, raw[i][c]);
    }
    for (size_t i = 0; i < n; ++i)
      static_[i][c] = hi > lo ? static_cast<float>((raw[i][c] - lo) / (hi - lo)) : 0.f;
  }
}

State Environment::state(size_t t, float prev_action) const {
  HAQ_ASSERT(t < num_decisions());
  const auto& s = static_[t / 2];
  State out{};
  for (size_t c = 0; c < 8; ++c) out[c] = s[c];
  out[8] = (t % 2 == 0) ? 0.f : 1.f;
  out[9] = prev_action;
  return out;
}

int Environment::action_to_bits(double action, BitRange r) {
  if (!(action >= 0)) action = 0;  // also maps NaN to the minimum
  if (action > 1) action = 1;
  double v = r.min - 0.5 + action * (r.max - r.min + 1);
  int b = static_cast<int>(std::round(v));
  return std::clamp(b, r.min, r.max);
}

float Environment::bits_to_action(int bits, BitRange r) {
  return static_cast<float>((bits - r.min + 0.5) / (r.max - r.min + 1));
}

BitsVector Environment::actions_to_bits(const std::vector<float>& actions) const {
  HAQ_ASSERT(actions.size() == num_decisions());
  BitsVector bits(num_layers());
  for (size_t l = 0; l < num_layers(); ++l) {
    bits[l].w = action_to_bits(actions[2 * l], w_range_);
    bits[l].a = action_to_bits(actions[2 * l + 1], a_range_);
  }
  return bits;
}

BitsVector Environment::enforce_budgets(BitsVector bits) const {
  while (!feasible(bits)) {
    bool lowered = false;
    for (size_t i = bits.size(); i-- > 0;) {
      if (bits[i].a > a_range_.min) {
        --bits[i].a;
        lowered = true;
        if (feasible(bits)) return bits;
      }
      if (bits[i].w > w_range_.min) {
        --bits[i].w;
        lowered = true;
        if (feasible(bits)) return bits;
      }
    }
    if (!lowered) break;  // all at the minimum: resolve_budgets rules this out
  }
  return bits;
}

}  // namespace haq::search
