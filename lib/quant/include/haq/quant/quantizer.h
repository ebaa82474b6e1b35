#pragma once
/// \file
/// Quantizers and calibration (DESIGN.md §4, docs/quantization.md).
///
/// Weights: symmetric per output channel, signed levels
/// [-(2^(b-1)-1), 2^(b-1)-1] held in int8; 1-bit weights are binary
/// {-alpha, +alpha} stored as -1/+1 with scale alpha.
/// Activations: per tensor, unsigned levels [0, 2^b-1] when the producer is
/// non-negative, else signed: symmetric levels [-(2^(b-1)-1), 2^(b-1)-1], or
/// asymmetric (affine) levels [-z, 2^b-1-z] with a zero point z that places
/// the 2^b levels over the calibrated [min, max]; a signed 1-bit activation
/// is binary {-scale, +scale} (the sign). The real value of level q is
/// q * scale (real zero is always level 0, so padding is exact).

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace haq::quant {

/// How the per-channel weight clip is chosen.
enum class WeightClip {
  max,  ///< clip at max |w| of the channel
  mse,  ///< grid over clip ratios of max |w|, minimising the channel's quantization MSE
};

/// How an activation range is calibrated.
enum class CalibMethod {
  minmax,      ///< the largest magnitude seen
  percentile,  ///< the 99.99th percentile of the magnitudes
  mse,         ///< grid over clip ratios of the max, minimising quantization MSE (default)
  kl,          ///< TensorRT-style entropy calibration on a histogram
};

/// How layer inputs that can be negative are quantized.
enum class ActQuantMode {
  symmetric,   ///< levels [-(2^(b-1)-1), 2^(b-1)-1], zero in the middle
  asymmetric,  ///< levels [-z, 2^b-1-z]: all 2^b levels over the calibrated [min, max]
};

const char* to_string(ActQuantMode m);
/// "symmetric" or "asymmetric"; Error(usage) otherwise.
ActQuantMode parse_act_quant(const std::string& s);
const char* to_string(CalibMethod m);
const char* to_string(WeightClip c);
/// "minmax", "percentile", "mse" or "kl"; Error(usage) otherwise.
CalibMethod parse_calib_method(const std::string& s);
/// "max" or "mse"; Error(usage) otherwise.
WeightClip parse_weight_clip(const std::string& s);

/// Largest signed level: 2^(b-1)-1 for b >= 2, and 1 for b == 1 (binary).
inline int32_t signed_max_level(int bits) { return bits <= 1 ? 1 : (1 << (bits - 1)) - 1; }
/// Largest unsigned level: 2^b - 1.
inline int32_t unsigned_max_level(int bits) { return (1 << bits) - 1; }

/// Per-tensor activation quantizer: level = clamp(nearbyint(x / scale), lo, hi),
/// except binary (signed, 1 bit): level = x >= 0 ? +1 : -1.
struct ActQuant {
  int bits = 8;
  bool is_unsigned = true;  ///< u8 container and levels [0, 2^b-1]; else s8
  float scale = 1.f;        ///< real value of level 1
  float inv_scale = 1.f;    ///< 1 / scale, what the kernels multiply by
  int32_t lo = 0, hi = 255;
  bool binary() const { return !is_unsigned && bits == 1; }
  /// Asymmetric signed levels [-z, 2^b-1-z] (see make_affine_act_quant).
  bool affine() const { return !is_unsigned && !binary() && lo != -hi; }
  /// What the u8 codes of this quantizer carry: code = level + code_zero_point().
  /// 0 unsigned, 2^(b-1) symmetric signed (binary: 1), z = -lo affine.
  int32_t code_zero_point() const {
    if (is_unsigned) return 0;
    return affine() ? -lo : int32_t{1} << (bits - 1);
  }
  /// The level of x. Ties round to even (the default FP rounding mode).
  int32_t level(float x) const {
    if (binary()) return x >= 0.f ? 1 : -1;
    float v = x * inv_scale;
    if (!(v >= static_cast<float>(lo))) v = static_cast<float>(lo);  // also catches NaN
    if (v > static_cast<float>(hi)) v = static_cast<float>(hi);
    // Round half to even with the FP adder (|v| <= 255, far below 2^22):
    // the same result as nearbyint, without a libm call per element.
    v = (v + 12582912.f) - 12582912.f;
    return static_cast<int32_t>(v);
  }
  float fake(float x) const { return static_cast<float>(level(x)) * scale; }
};

/// The activation quantizer whose top level sits at `threshold` (the clip):
/// scale = threshold / hi. A zero threshold gives scale 1 (an all-zero tensor).
ActQuant make_act_quant(float threshold, int bits, bool is_unsigned);

/// The asymmetric signed quantizer spanning about [-neg_clip, pos_clip] at
/// `bits` >= 2: scale = (neg_clip + pos_clip) / (2^b - 1), zero point
/// z = round(neg_clip / scale) in [0, 2^b - 1], levels [-z, 2^b - 1 - z].
/// Both clips >= 0; both 0 gives scale 1, z 0.
ActQuant make_affine_act_quant(double neg_clip, double pos_clip, int bits);

/// The asymmetric quantizer with the given scale and zero point z (levels
/// [-z, 2^b-1-z]); scale > 0, 0 <= z <= 2^b - 1.
ActQuant affine_act_quant(double scale, int32_t z, int bits);

/// Per-output-channel quantized weights.
struct QuantizedWeights {
  int bits = 8;
  int64_t channels = 0;     ///< output channels
  int64_t per_channel = 0;  ///< elements per channel
  std::vector<int8_t> values;  ///< channels x per_channel levels
  std::vector<float> scales;   ///< per channel: real value of level 1
};

/// Quantizes `channels` rows of `per_channel` weights each (canonical
/// layout, output channel first). Levels are in [-signed_max_level(bits),
/// signed_max_level(bits)]; bits == 1 gives binary -1/+1 with scale mean|w|.
QuantizedWeights quantize_weights(const float* w, int64_t channels, int64_t per_channel, int bits,
                                  WeightClip clip);

/// values[i] * scales[channel], the weights the quantized layer computes with.
std::vector<float> dequantize(const QuantizedWeights& q);

/// A histogram of |x| (for unsigned data, of x) with a range that grows by
/// powers of two as larger values arrive, plus exact statistics. Exact zeros
/// are counted apart: they quantize without error at any scale. The
/// negative values are also counted on their own (neg_counts(), the same
/// bins of |x|), so the two sides of signed data can be calibrated apart.
class Histogram {
 public:
  explicit Histogram(int bins = 4096) : counts_(bins, 0.0), neg_(bins, 0.0) {}
  /// Adds n values. NaN and +-inf are not added (counted by non_finite()),
  /// so any float is safe here.
  void add(const float* x, int64_t n);

  double min() const { return min_; }          ///< smallest value seen (signed)
  double max_abs() const { return max_abs_; }  ///< largest |x| seen
  double max() const { return max_; }          ///< largest value seen (signed; 0 if none is positive)
  double count() const { return total_; }      ///< finite values seen, zeros included
  double non_finite() const { return non_finite_; }  ///< NaN and +-inf values passed to add()
  double zeros() const { return zeros_; }
  double range() const { return range_; }      ///< upper edge of the last bin
  int bins() const { return static_cast<int>(counts_.size()); }
  double bin_width() const { return range_ / counts_.size(); }
  const std::vector<double>& counts() const { return counts_; }   ///< all non-zero values, by |x|
  const std::vector<double>& neg_counts() const { return neg_; }  ///< the negative ones, by |x|
  /// The |x| below which `pct` percent of the non-zero values lie (interpolated).
  double percentile(double pct) const;

 private:
  void grow_to(double v);
  std::vector<double> counts_, neg_;
  double range_ = 0, min_ = 0, max_ = 0, max_abs_ = 0, total_ = 0, zeros_ = 0, non_finite_ = 0;
};

/// Expected squared quantization error of the histogram's values under a
/// quantizer with top level at `threshold` (bin centres stand for their bins).
double histogram_quant_mse(const Histogram& h, double threshold, int bits, bool is_unsigned);

/// The clip threshold for an activation with values described by `h`,
/// quantized to `bits` (signed or not), chosen by `method`.
float calibrate_range(const Histogram& h, int bits, bool is_unsigned, CalibMethod method);

/// The asymmetric quantizer for signed data described by `h` at `bits` >= 2:
/// minmax spans [min, max]; percentile spans each side's 99.99th percentile
/// of |x|; mse minimises the expected squared error over (scale, zero point):
/// 200 scales from (max - min) / (2^b - 1) down to 0.5 % of it, every zero
/// point at each (prefix sums make one candidate O(1)); kl is not defined
/// for two sides (Error(usage)).
ActQuant calibrate_affine(const Histogram& h, int bits, CalibMethod method);

/// Expected squared error of the histogram's values under an asymmetric
/// quantizer (bin centres stand for their bins).
double histogram_affine_mse(const Histogram& h, const ActQuant& q);

/// The clip threshold by method on raw samples (a convenience: builds a Histogram).
float calibrate_range(const std::vector<float>& samples, int bits, bool is_unsigned,
                      CalibMethod method);

}  // namespace haq::quant
