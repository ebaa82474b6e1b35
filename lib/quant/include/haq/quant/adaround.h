#pragma once
/// \file
/// Adaptive rounding of weights (Nagel et al., "Up or Down? Adaptive
/// Rounding for Post-Training Quantization", ICML 2020; docs/quantization.md).
///
/// Nearest rounding minimises each weight's own error; what matters is the
/// layer's output. AdaRound keeps the scales of the per-channel quantizer and
/// chooses for every weight whether its level is floor(w/s) or floor(w/s)+1,
/// minimising the output error on the calibration inputs:
///
///   E_c = (u_c - l_c)^T G (u_c - l_c),  u = w / s (in levels), l = the levels,
///
/// where G = sum of x x^T over the layer's input patches x (one Gram matrix per
/// group of a convolution). The choice is relaxed to a soft h in [0, 1]
/// (the rectified sigmoid of a free variable V: h = clip(sigmoid(V)(zeta -
/// gamma) + gamma, 0, 1), zeta = 1.1, gamma = -0.1) and optimised by Adam on
/// E_c + lambda * sum(1 - |2h - 1|^beta), beta annealed from 20 to 2 after a
/// warm-up without the regulariser, then rounded (h >= 1/2: up). Output
/// channels are independent problems, so the result does not depend on the
/// thread count; no random number is drawn. A channel whose adaptive levels
/// have a larger E_c than the nearest levels keeps the nearest ones.

#include <cstdint>
#include <string>
#include <vector>

#include "haq/quant/quantizer.h"

namespace haq::quant {

/// How weights are rounded to their levels.
enum class WeightRounding {
  nearest,   ///< round to nearest (ties to even)
  adaround,  ///< adaptive rounding on the calibration inputs
};

const char* to_string(WeightRounding r);
/// "nearest" or "adaround"; Error(usage) otherwise.
WeightRounding parse_weight_rounding(const std::string& s);

/// Parameters of the optimisation: the paper's beta schedule; fewer steps
/// than its 10,000, on exact full-batch gradients; lambda for haq's error
/// scale (the Gram matrix divided by its mean diagonal), chosen on
/// fmnist-mobilenet at w3a8, where 0.01, 0.1, 1 and 3 leave 68 %, 50 %, 45 %
/// and 45 % of the nearest rounding's output error (docs/quantization.md).
struct AdaRoundOptions {
  int iterations = 1000;     ///< Adam steps per layer and bit width
  double warmup = 0.2;       ///< fraction of the steps without the regulariser
  double lambda = 1.0;       ///< weight of the regulariser (the Gram matrix is scaled to a mean diagonal of 1)
  double beta_start = 20, beta_end = 2;
  double learning_rate = 0.05;
};

/// What one call did.
struct AdaRoundStats {
  int64_t weights = 0;       ///< weights optimised (not clipped to the top level)
  int64_t flipped = 0;       ///< of those, rounded the other way than nearest
  int64_t kept_nearest = 0;  ///< channels whose nearest levels had the smaller error
  double error_nearest = 0;  ///< sum over channels of E_c at the nearest levels
  double error_adaround = 0; ///< the same at the chosen levels
  AdaRoundStats& operator+=(const AdaRoundStats& o) {
    weights += o.weights;
    flipped += o.flipped;
    kept_nearest += o.kept_nearest;
    error_nearest += o.error_nearest;
    error_adaround += o.error_adaround;
    return *this;
  }
};

/// What adaptive rounding needs to know of a layer's inputs, per group of
/// its output channels (each per_channel x per_channel, row-major): sums over
/// the calibration inputs' patches x. When the layer's input is itself
/// quantized (x^ = its quantized value, n = x - x^), the output error of
/// levels l is sum |W x - s l x^|^2 = e^T gram e + 2 e^T cross u + u^T noise u
/// with e = u - l: rounding then also compensates the input's quantization
/// noise (the paper's asymmetric reconstruction, for the layer's own input).
struct RoundingInputs {
  std::vector<double> gram;   ///< sum of x^ x^^T (x x^T when the input is not quantized)
  std::vector<double> cross;  ///< sum of x^ n^T, or empty (an unquantized input)
  std::vector<double> noise;  ///< sum of n n^T, or empty
};

/// Refines the levels of `q` (made by quantize_weights from `w`, bits >= 2)
/// in place. `w` and `q` hold `q.channels` rows of `q.per_channel` weights;
/// the channels form `groups` equal groups, each with its matrices in
/// `inputs`. A group whose Gram matrix is zero (no input reached it) keeps
/// nearest levels.
AdaRoundStats adaround(const float* w, const RoundingInputs& inputs, int64_t groups, QuantizedWeights& q,
                       const AdaRoundOptions& options = {});

/// The output error summed over the channels of `q`, with each group's
/// matrices divided by the mean diagonal element of its Gram matrix (in
/// squared levels; nearest rounding of independent, unquantized inputs gives
/// about per_channel / 12 per channel): what adaround minimises, on the
/// scale of AdaRoundStats' errors.
double rounding_error(const float* w, const RoundingInputs& inputs, int64_t groups, const QuantizedWeights& q);

}  // namespace haq::quant
