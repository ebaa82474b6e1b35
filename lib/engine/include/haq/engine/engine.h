#pragma once
/// \file
/// The executor: runs a Graph on oneDNN in fp32 and under a quantization
/// Policy (DESIGN.md §4), batched. Quantized layers run oneDNN int8
/// primitives (u8/s8 activations x s8 weights holding b-bit levels, s32
/// accumulation, per-channel output scales, fused bias and ReLU), so every
/// accuracy is a measurement of integer kernels. See docs/quantization.md.

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "haq/data/dataset.h"
#include "haq/engine/kernels.h"
#include "haq/engine/plan.h"
#include "haq/model/graph.h"
#include "haq/quant/adaround.h"
#include "haq/quant/policy.h"
#include "haq/quant/quantizer.h"

namespace haq::engine {

using quant::ActQuantMode;
using quant::CalibMethod;
using quant::WeightClip;
using quant::WeightRounding;

/// Engine parameters.
struct EngineOptions {
  int64_t batch = 256;                       ///< must equal the graph's batch
  CalibMethod calib = CalibMethod::mse;      ///< activation range calibration
  /// Layer inputs that can be negative: symmetric signed levels, or
  /// asymmetric levels with a zero point over the calibrated [min, max]
  /// (quant::calibrate_affine; not with CalibMethod::kl). Unsigned inputs
  /// and 1-bit inputs are the same under both.
  ActQuantMode act_quant = ActQuantMode::symmetric;
  WeightClip weight_clip = WeightClip::mse;  ///< per-channel weight clip
  bool bias_correction = true;               ///< fold the mean weight-quantization shift into the bias
  /// With bias_correction: also the mean shift of the layer's own input
  /// quantization (clipping is not zero-mean): E[W x] - E[Wq xq] instead of
  /// (W - Wq) E[x], with E[xq] per input element and a_bits from a second
  /// calibration pass.
  bool input_bias_correction = false;
  /// Cross-layer equalization of the weights (haq/model/equalize.h) when the
  /// engine is made; graph() then returns the equalized weights.
  bool equalize = false;
  /// How weights round to their levels at 2..8 bits (1-bit weights are
  /// signs). adaround: per (layer, w_bits, a_bits), minimising the layer's
  /// output error against fp32 with its input quantized at a_bits (2..5;
  /// from 6 bits on its fp32 input), on matrices of its calibration inputs
  /// that calibrate() collects (a second pass over the samples); computed
  /// once, then cached.
  WeightRounding weight_rounding = WeightRounding::nearest;
  quant::AdaRoundOptions adaround;
  uint64_t seed = 0;                         ///< recorded; the engine itself draws no random numbers
  /// Where int8 layers run split (see Int8Split): only where this CPU's
  /// kernels could saturate, or always (tests; the results are identical).
  Int8Split int8_split = Int8Split::automatic;
  /// A quantized convolution whose readers are all quantized convolutions
  /// with one unsigned activation quantizer writes their u8 codes directly
  /// (same codes, no f32 round trip). Off: always f32 (tests compare both).
  bool direct_u8_outputs = true;
};

/// What calibration learned about one layer's input.
struct LayerCalibration {
  bool is_unsigned = false;  ///< producer is non-negative: u8 levels [0, 2^b-1]
  double min = 0, max_abs = 0;
  /// Top clip per a_bits (index 1..8; [0] unused; -1 until a run used it):
  /// hi * scale of the quantizer (for an asymmetric one, its positive clip).
  std::vector<float> thresholds;
};

/// One quantizable layer's f32 output during an observed run (see
/// Engine::set_layer_observer): the values of the batch's real samples
/// (`count` = samples x per-sample elements), after the layer's fused
/// activation, in the layer's output layout (NHWC for a convolution, plain
/// rows for Gemm/MatMul: the same under any policy, so outputs of two runs
/// compare element by element).
struct LayerOutput {
  size_t layer = 0;
  const float* data = nullptr;
  int64_t count = 0;
  bool nhwc = false;
};
using LayerObserver = std::function<void(const LayerOutput&)>;

/// Output fidelity of one layer under a policy (Engine::layer_sqnr): sums over
/// the samples and output elements of ref^2 and (ref - q)^2, ref = the fp32
/// model's output of the layer, q = its output when running quantized.
struct LayerSqnr {
  std::string layer;
  bool quantized = false;         ///< quantized in the policy (else fp32)
  double signal = 0;              ///< sum of ref^2
  double noise_cumulative = 0;    ///< every layer quantized as in the policy
  double noise_isolated = 0;      ///< only this layer quantized (0 for an fp32 layer)
  /// 10 log10(signal / noise) in dB; +inf without noise.
  static double db(double signal, double noise) {
    if (noise <= 0) return std::numeric_limits<double>::infinity();
    return 10.0 * std::log10(signal / noise);
  }
  double cumulative_db() const { return db(signal, noise_cumulative); }
  double isolated_db() const { return db(signal, noise_isolated); }
};

/// What adaptive rounding cost and did so far (Engine::rounding_stats).
struct RoundingStats {
  int64_t layer_bits = 0;  ///< (layer, w_bits, a_bits) combinations rounded adaptively here
  double seconds = 0;      ///< their wall time
  int64_t loaded = 0;      ///< combinations taken from a rounding cache file instead
  quant::AdaRoundStats totals;  ///< summed over the combinations of both kinds
  /// One line for the user: "adaptive rounding: 490 (layer, w_bits, a_bits)
  /// combinations in 61.2 s, 9.1 % of the weights rounded the other way,
  /// output error 1.2e+03 -> 611" (with a cache: "490 ..., 478 from the
  /// rounding cache and 12 rounded in 1.5 s").
  std::string summary() const;
};

/// What Engine::load_rounding_cache found in a cache file.
struct RoundingCacheLoad {
  bool exists = false;         ///< the file was there
  bool other_version = false;  ///< a cache of another format version (ignored)
  int64_t loaded = 0;          ///< entries computed from this engine's model, calibration and options
  int64_t stale = 0;           ///< entries computed from something else (not used; kept on save)
  double seconds = 0;          ///< reading the file and checking the keys
  /// One line for the user about `file`: "rounding cache: 490 (layer,
  /// w_bits, a_bits) combinations from runs/m/rounding-cache.bin in 0.4 s".
  std::string summary(const std::string& file) const;
};

/// Runs one imported Graph. A NaN or inf in a batch's input, at a
/// quantizable layer's input or in the output is Error(data) naming the
/// dataset's source and the sample (or the batch row), the layer and the node
/// that wrote the value. A dataset's images are scanned once per sample and
/// engine: they must not change between runs. Owns the oneDNN objects and the caches
/// (quantized weights per (layer, w_bits), primitives per (layer, w_bits,
/// a_bits), activation scales per (layer, a_bits)).
class Engine {
 public:
  /// `graph_at_batch` must have been imported with ImportOptions::batch ==
  /// options.batch. Error(unsupported) naming the node for an op the engine
  /// cannot run.
  Engine(model::Graph graph_at_batch, EngineOptions options = {});
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;

  const model::Graph& graph() const;
  const EngineOptions& options() const;

  /// Runs fp32 over the samples and records, per quantizable layer, the
  /// range of its input (a histogram) and, for bias correction, its mean
  /// input. Must be called before run() with a quantized layer.
  void calibrate(const data::Dataset& d, const std::vector<int64_t>& indices);
  bool calibrated() const;
  /// Calibration results per layer (after calibrate()).
  std::vector<LayerCalibration> calibration() const;

  /// fp32 logits, indices.size() x classes (row-major).
  std::vector<float> run_fp32(const data::Dataset& d, const std::vector<int64_t>& indices);
  /// Logits under `p` (one entry per layer, Graph::layers order).
  std::vector<float> run(const quant::Policy& p, const data::Dataset& d,
                         const std::vector<int64_t>& indices);
  /// Builds what running `p` needs (quantized weights, thresholds, bias
  /// shifts, primitives) without running anything, so that timing a run
  /// measures only the run.
  void prepare(const quant::Policy& p);
  /// Runs one batch already laid out as the graph input (batch x sample
  /// elements); returns the first graph output (batch x classes). A null
  /// policy runs fp32.
  std::vector<float> run_batch(const quant::Policy* p, const std::vector<float>& input);

  /// Calls `obs` after every quantizable layer of every batch run from now
  /// on (run, run_fp32, run_batch, calibrate) with its f32 output; an empty
  /// function ends observing. While observing, quantized layers write f32
  /// outputs (no direct u8 outputs, EngineOptions::direct_u8_outputs), which
  /// gives the same logits.
  void set_layer_observer(LayerObserver obs);
  /// Per quantizable layer (Graph::layers order), the SQNR of its output
  /// under `p` against fp32 on the samples: with every layer as in `p`
  /// (cumulative: the errors of earlier layers included) and with only this
  /// layer quantized (isolated). Runs fp32, `p`, and one policy per quantized
  /// layer (stopping after that layer) on each batch. Needs calibrate().
  std::vector<LayerSqnr> layer_sqnr(const quant::Policy& p, const data::Dataset& d,
                                    const std::vector<int64_t>& indices);

  /// Names of the layers that, under `p`, write their output directly as
  /// their consumers' u8 codes (see EngineOptions::direct_u8_outputs).
  std::vector<std::string> u8_output_layers(const quant::Policy& p);
  /// How every layer executes under `p` (plan.h): what run() executes.
  /// Needs calibrate() when `p` quantizes a layer.
  QuantPlan plan(const quant::Policy& p);
  /// Number of output classes (elements per sample of the first output).
  int64_t num_classes() const;

  /// What quantized layer `layer` computes with at (w_bits, a_bits): its
  /// activation quantizer, its b-bit weight levels with per-channel scales,
  /// and its float bias including the bias correction. Used by export to
  /// reproduce the engine's arithmetic. Needs calibrate().
  struct QuantizedLayer {
    quant::ActQuant act;
    quant::QuantizedWeights weights;  ///< empty for act_matmul
    std::vector<float> bias;  ///< c_out values (empty for act_matmul)
    quant::ActQuant act_b;    ///< act_matmul: the second operand's quantizer (signed, per tensor, at w_bits)
  };
  QuantizedLayer quantized_layer(size_t layer, int w_bits, int a_bits);

  /// Computes (and caches) the weights of every weighted layer at each of
  /// `w_bits` x `a_bits` (adaptive rounding depends on the layer's input
  /// bits), so that the one-off cost of adaptive rounding is paid up front.
  /// Needs calibrate() under WeightRounding::adaround.
  void prepare_weights(const std::vector<int>& w_bits, const std::vector<int>& a_bits);
  /// The adaptive rounding done so far.
  RoundingStats rounding_stats() const;
  /// The rounding cache on disk (docs/quantization.md, "The rounding
  /// cache"): takes every entry of `file` whose key matches what this engine
  /// would compute (the layer's weights, its calibration inputs at those
  /// input bits, w_bits, the weight clip, the adaptive-rounding options,
  /// haq's version), so that those combinations are not rounded again. A
  /// missing file loads nothing; one that is not a valid rounding cache is
  /// Error(io) naming it and the byte. Needs calibrate() under
  /// WeightRounding::adaround.
  RoundingCacheLoad load_rounding_cache(const std::string& file);
  /// Writes (atomically, under the output policy) every adaptively rounded
  /// weight set computed or loaded so far to `file`, if any was computed
  /// since the last load or save of it, then the entries of the loaded file
  /// that were made from something else, as many as keep the file within
  /// the size this model's full cache has; returns the entries written (0:
  /// not written).
  int64_t save_rounding_cache(const std::string& file);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The ops the engine has a kernel for (its fp32 kernels and the
/// quantizable layers Conv, Gemm, MatMul), sorted.
std::vector<std::string> kernel_ops();

/// Accuracy of logits against labels and/or fp32 logits, in percent.
struct Accuracy {
  double top1 = 0;      ///< % of samples whose top-1 class is the label
  double top5 = 0;      ///< % of samples whose label is among the 5 largest logits
  double fidelity = 0;  ///< % of samples whose top-1 equals the fp32 model's top-1
  int64_t samples = 0;
  /// Samples whose logits (or fp32 reference logits) hold a NaN: scored wrong
  /// for every metric; callers warn with the count.
  int64_t nan_samples = 0;
  double seconds = 0;   ///< wall time of the run that produced the logits
  /// The named metric: "top1", "top5" or "fidelity".
  double metric(const std::string& name) const;
};

/// Scores `logits` (n x classes). `labels` may be empty (top1/top5 = 0);
/// `fp32_logits` may be empty (fidelity = 0).
Accuracy score(const std::vector<float>& logits, int64_t classes,
               const std::vector<int32_t>& labels, const std::vector<float>& fp32_logits);

/// Labels of `indices` in `d` (empty if `d` is unlabeled).
std::vector<int32_t> labels_of(const data::Dataset& d, const std::vector<int64_t>& indices);

/// Measures policies on a fixed evaluation subset, caching results per
/// policy key (quant::policy_key). The fp32 reference is run once.
class PolicyEvaluator {
 public:
  /// `engine` must be calibrated; `data` must outlive the evaluator.
  PolicyEvaluator(Engine& engine, const data::Dataset& data, std::vector<int64_t> indices);
  /// fp32 accuracy on the subset.
  const Accuracy& fp32() const { return fp32_; }
  /// Accuracy of `p` (measured once, then from the cache).
  Accuracy evaluate(const quant::Policy& p);
  /// Number of distinct policies measured.
  size_t cache_size() const { return cache_.size(); }

 private:
  Engine& engine_;
  const data::Dataset& data_;
  std::vector<int64_t> indices_;
  std::vector<int32_t> labels_;
  std::vector<float> fp32_logits_;
  Accuracy fp32_;
  std::map<std::string, Accuracy> cache_;
};

}  // namespace haq::engine
