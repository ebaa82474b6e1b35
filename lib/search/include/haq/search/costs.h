#pragma once
/// \file
/// What the search needs to know about the hardware: per-layer costs for every
/// (w_bits, a_bits), summed into model totals. The search only adds numbers
/// from this table (DESIGN.md §1); it is filled from lib/hw's cost table by
/// the pipeline, or by hand in tests.

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "haq/quant/policy.h"

namespace haq::search {

/// The objectives a budget can constrain.
enum class Metric { latency, energy, size, bops };
/// All metrics, in a fixed order.
inline constexpr std::array<Metric, 4> kAllMetrics{Metric::latency, Metric::energy, Metric::size,
                                                   Metric::bops};
/// "latency", "energy", "size", "bops".
const char* to_string(Metric m);

/// Costs of a layer or a whole model.
struct Costs {
  double latency_s = 0;   ///< seconds per batch on the profile
  double energy_pj = 0;   ///< picojoules per batch
  double size_bits = 0;   ///< weight storage in bits
  double bops = 0;        ///< bit operations per sample: MACs x w_bits x a_bits
  double get(Metric m) const;
  Costs& operator+=(const Costs& o);
  friend Costs operator+(Costs a, const Costs& b) { return a += b; }
  bool operator==(const Costs&) const = default;
};

/// Weight and activation bits of one layer.
struct Bits {
  int w = 8;
  int a = 8;
  bool operator==(const Bits&) const = default;
};

/// Bits of every layer, in Graph::layers order.
using BitsVector = std::vector<Bits>;

/// An inclusive range of bitwidths.
struct BitRange {
  int min = 2;
  int max = 8;
};

/// Per-layer cost for each (w_bits, a_bits) in 1..8, plus the cost of the
/// parts of the model that are not quantized.
struct CostModel {
  /// table[layer][(w - 1) * 8 + (a - 1)]
  std::vector<std::array<Costs, 64>> table;
  /// Cost that does not depend on the policy (non-quantizable ops).
  Costs fixed;

  size_t num_layers() const { return table.size(); }
  const Costs& layer(size_t l, int w_bits, int a_bits) const {
    return table[l][(w_bits - 1) * 8 + (a_bits - 1)];
  }
  /// Model totals for these bits.
  Costs total(const BitsVector& bits) const;
  /// Model totals for one uniform bitwidth.
  Costs uniform(int w_bits, int a_bits) const;
};

/// Static description of a quantizable layer: the columns of the state.
struct LayerInfo {
  std::string name;
  bool depthwise = false;
  double c_in = 0, c_out = 0;
  double stride = 1, kernel = 1;
  double params = 0;     ///< number of weight elements
  double in_hw = 1;      ///< input feature map height x width (1 for fully-connected)
};

/// LayerInfo for every quantizable layer of a graph.
std::vector<LayerInfo> layer_infos(const model::Graph& g);

/// A policy from bits and layer names.
quant::Policy to_policy(const std::vector<LayerInfo>& layers, const BitsVector& bits);
/// Bits of a policy (fp32 layers count as 8/8).
BitsVector to_bits(const quant::Policy& p);

/// Measures the top-1 accuracy of a policy, in percent, on the search's
/// evaluation subset. Must be deterministic.
using AccuracyFn = std::function<double(const quant::Policy&)>;

}  // namespace haq::search
