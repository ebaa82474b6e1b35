#pragma once
// A synthetic search problem: additive costs per layer and a known accuracy
// function of the bits, so tests can check results against closed forms.
#include <cmath>

#include "haq/search/search.h"

namespace haq::search::fake {

/// Layer l has `macs[l]` MACs and `params[l]` weights; latency = macs*w*a*1e-9 s,
/// energy = macs*(w+a) pJ, size = params*w bits, bops = macs*w*a.
inline CostModel fake_costs(const std::vector<double>& macs, const std::vector<double>& params) {
  CostModel m;
  for (size_t l = 0; l < macs.size(); ++l) {
    std::array<Costs, 64> t{};
    for (int w = 1; w <= 8; ++w)
      for (int a = 1; a <= 8; ++a)
        t[(w - 1) * 8 + (a - 1)] = Costs{macs[l] * w * a * 1e-9, macs[l] * (w + a), params[l] * w,
                                         macs[l] * w * a};
    m.table.push_back(t);
  }
  return m;
}

inline std::vector<LayerInfo> fake_layers(size_t n) {
  std::vector<LayerInfo> out;
  for (size_t i = 0; i < n; ++i) {
    LayerInfo l;
    l.name = "layer" + std::to_string(i);
    l.c_in = 8.0 * (i + 1);
    l.c_out = 16.0 * (i + 1);
    l.kernel = 3;
    l.stride = i % 2 ? 2 : 1;
    l.depthwise = i == 1;
    l.params = 100.0 * (i + 1);
    l.in_hw = 64.0 / (i + 1);
    out.push_back(l);
  }
  return out;
}

/// Separable accuracy: 90 - sum_l sw[l] * (8 - w)^2 - sa[l] * (8 - a)^2 (percent).
struct FakeAccuracy {
  std::vector<double> sw, sa;
  double operator()(const quant::Policy& p) const {
    double acc = 90;
    for (size_t l = 0; l < p.layers.size(); ++l) {
      acc -= sw[l] * std::pow(8 - p.layers[l].w_bits, 2);
      acc -= sa[l] * std::pow(8 - p.layers[l].a_bits, 2);
    }
    return acc;
  }
};

inline SearchProblem fake_problem(const std::string& budget = "latency<=0.4x") {
  SearchProblem p;
  p.layers = fake_layers(5);
  p.costs = fake_costs({1e6, 4e6, 2e6, 8e6, 1e6}, {100, 400, 200, 800, 500});
  p.w_range = {2, 8};
  p.a_range = {2, 8};
  p.budgets = resolve_budgets(parse_budgets(budget), p.costs, p.w_range, p.a_range);
  p.accuracy = FakeAccuracy{{0.5, 0.05, 0.1, 0.02, 0.8}, {0.3, 0.1, 0.05, 0.01, 0.4}};
  p.fp32_accuracy_pct = 90;
  return p;
}

}  // namespace haq::search::fake
