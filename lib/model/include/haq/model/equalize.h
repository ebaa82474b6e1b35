#pragma once
/// \file
/// Cross-layer equalization (Nagel, van Baalen, Blankevoort, Welling:
/// "Data-Free Quantization Through Weight Equalization and Bias Correction",
/// ICCV 2019): for two consecutive layers y = W2 f(W1 x + b1) with f
/// positively homogeneous (identity or Relu), scaling output channel i of
/// layer 1 by 1/s_i and input channel i of layer 2 by s_i leaves the
/// function unchanged; s_i = sqrt(r1_i / r2_i) makes both channels' ranges
/// sqrt(r1_i r2_i), so no channel of either weight is wasted on another's
/// range. A pure function of the weights: no data.

#include <string>
#include <vector>

#include "haq/model/graph.h"

namespace haq::model {

/// One equalized pair of layers.
struct EqualizedPair {
  std::string first, second;  ///< layer names
  std::string through;        ///< "" (directly) or "Relu"
};

struct EqualizeReport {
  std::vector<EqualizedPair> pairs;
  int passes = 0;              ///< sweeps over the pairs (chains need several)
  double last_change = 0;      ///< max |ln s| of the last sweep
};

/// Equalizes every eligible pair in place: Conv -> Conv (any groups,
/// depthwise included) and Gemm/MatMul -> Gemm/MatMul, directly or through a
/// Relu, where the first layer's output (and the Relu's) has that one
/// consumer and is not a graph output, and neither weight is shared. Relu6
/// (Clip) is not positively homogeneous and stops a pair. Sweeps until no
/// scale changes by more than `tolerance` (relative) or `max_passes`.
EqualizeReport equalize_cross_layer(Graph& g, int max_passes = 500, double tolerance = 1e-4);

}  // namespace haq::model
